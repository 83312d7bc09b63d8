import { eq } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { codeFromMail, createClient, createUser, lastMail } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'

// None of these answers may tell whether an address has an account (OWASP Forgot Password and
// Authentication cheat sheets). Their timing is measured in bench/auth.ts, not asserted here.
t.test('answers that do not reveal accounts', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const verified = await createUser(app)
  const unverified = await createUser(app, { verified: false })
  const register = (email: string, password = 'Kelp-Forest-9!') =>
    post('/v1/auth/register', {
      email,
      password,
      first_name: 'Some',
      last_name: 'One',
      toc_accepted_at: '2024-07-01T12:34:56Z',
      privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
    })

  t.test('verify_email: verified, unverified with a wrong code, unknown — one answer', async (t) => {
    await post('/v1/auth/resend_verification', { email: unverified.email })
    const code = await codeFromMail(app, unverified.email, 'email_verification')
    const wrong = code === '000000' ? '111111' : '000000'
    const answers = []
    for (const email of [verified.email, unverified.email, 'nobody-at-all@example.com']) {
      const res = await post('/v1/auth/verify_email', { email, code: wrong })
      answers.push({ status: res.statusCode, body: res.json() })
    }
    t.same(answers[0], { status: 400, body: { error: 'invalid_code', message: 'The code is wrong, used or expired.' } })
    t.same(answers[1], answers[0])
    t.same(answers[2], answers[0])
    const links = []
    for (const email of [verified.email, unverified.email, 'nobody-at-all@example.com']) {
      const res = await app.inject({
        method: 'GET',
        url: `/v1/auth/verify_email?email=${encodeURIComponent(email)}&code=${wrong}`,
      })
      links.push({ status: res.statusCode, body: res.json() })
    }
    t.same(links[0], { status: 404, body: { error: 'not_found', message: 'This link is not valid or has expired.' } })
    t.same(links[1], links[0])
    t.same(links[2], links[0])
    const ok = await post('/v1/auth/verify_email', { email: unverified.email, code })
    t.equal(ok.statusCode, 200, 'the right code still works')
  })

  t.test(
    'the verification link: HEAD verifies nothing, GET verifies, a browser gets a page for a dead one',
    async (t) => {
      const person = await createUser(app, { verified: false })
      await post('/v1/auth/resend_verification', { email: person.email })
      const mail = await lastMail(app, person.email, 'email_verification')
      const link = mail?.text.match(/\/v1\/auth\/verify_email\?[^\s]+/)?.[0] as string
      const isVerified = async () =>
        !!(await app.db.select().from(users).where(eq(users.id, person.id)))[0].emailVerifiedAt
      const head = await app.inject({ method: 'HEAD', url: link })
      t.equal(head.statusCode, 200)
      t.equal(head.body, '')
      t.notOk(await isVerified(), 'a scanner’s HEAD verifies nothing')
      const get = await app.inject({ method: 'GET', url: link })
      t.equal(get.statusCode, 302)
      t.equal(get.headers.location, 'nowatch://app/email-verified')
      t.ok(await isVerified())
      const again = await app.inject({ method: 'GET', url: link, headers: { accept: 'text/html,*/*' } })
      t.equal(again.statusCode, 404)
      t.match(again.headers['content-type'], /^text\/html/)
      t.match(again.headers['content-security-policy'], /^default-src 'none'/)
      t.match(again.body, /This link is not valid/)
    },
  )

  t.test('forgot_password: the same answer, the mail only for a real account, sent after the answer', async (t) => {
    const known = await post('/v1/auth/forgot_password', { email: verified.email })
    const unknown = await post('/v1/auth/forgot_password', { email: 'nobody-here@example.com' })
    t.same(known.json(), { status: 'success' })
    t.same(unknown.json(), known.json())
    t.same(Object.keys(unknown.headers).sort(), Object.keys(known.headers).sort(), 'the same headers')
    t.ok(await codeFromMail(app, verified.email, 'password_reset'))
    t.equal(await lastMail(app, 'nobody-here@example.com'), null)
  })

  t.test('resend_verification: the same answer for unknown, verified and unverified', async (t) => {
    const bodies = []
    for (const email of ['nobody-two@example.com', verified.email, unverified.email]) {
      bodies.push((await post('/v1/auth/resend_verification', { email })).json())
    }
    t.same(bodies, [{ status: 'success' }, { status: 'success' }, { status: 'success' }])
    t.equal(await lastMail(app, 'nobody-two@example.com'), null)
    t.equal(await lastMail(app, verified.email, 'email_verification'), null, 'nothing for a verified account')
    t.ok(await lastMail(app, unverified.email, 'email_verification'))
  })

  t.test('register with a taken address: the same answer, the owner told, the account untouched', async (t) => {
    const [before] = await app.db.select().from(users).where(eq(users.id, verified.id))
    const taken = await register(verified.email.toUpperCase(), 'Other-Pass-77!')
    const fresh = await register('brand-new-person@example.com')
    t.same(taken.json(), { status: 'success' })
    t.same(fresh.json(), taken.json())
    t.equal(taken.statusCode, fresh.statusCode)
    const [after] = await app.db.select().from(users).where(eq(users.id, verified.id))
    t.same(after, before, 'the existing account is exactly as it was')
    t.ok(await lastMail(app, verified.email, 'registration_attempt'))
    t.ok(await codeFromMail(app, 'brand-new-person@example.com', 'email_verification'))
    const login = await post('/v2/auth/login', { email: 'brand-new-person@example.com', password: 'Kelp-Forest-9!' })
    t.equal(login.statusCode, 200, 'the new account logs in at once')
  })
})
