import { eq } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { codeFromMail, createClient, lastMail } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'

const body = (over: Record<string, unknown> = {}) => ({
  email: 'spongebob@bikinibottom.com',
  password: 'BigBob27!',
  first_name: 'Sponge Bob',
  last_name: 'Squarepants',
  toc_accepted_at: '2024-07-01T12:34:56Z',
  privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
  ...over,
})

t.test('register', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)

  t.test('the seed example registers, normalised, and a verification e-mail is queued', async (t) => {
    const res = await post('/v1/auth/register', body({ email: 'SpongeBob@BikiniBottom.com' }))
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success' })
    const [row] = await app.db.select().from(users).where(eq(users.email, 'spongebob@bikinibottom.com'))
    t.ok(row, 'stored lower-cased')
    t.equal(row.firstName, 'Sponge Bob')
    t.equal(row.tocAcceptedAt.toISOString(), '2024-07-01T12:34:56.000Z')
    t.equal(row.emailVerifiedAt, null)
    t.notMatch(row.passwordHash, /BigBob/, 'only a hash is stored')
    const mail = await lastMail(app, 'spongebob@bikinibottom.com', 'email_verification')
    t.ok(mail)
    t.match(mail?.text, /\/v1\/auth\/verify_email\?email=spongebob%40bikinibottom\.com&code=\d{6}/)
  })

  t.test('an address that has an account gets the same answer, no second account, and its owner is told', async (t) => {
    const res = await post('/v1/auth/register', body({ email: 'SPONGEBOB@bikinibottom.com', first_name: 'Impostor' }))
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success' })
    const rows = await app.db.select().from(users).where(eq(users.email, 'spongebob@bikinibottom.com'))
    t.equal(rows.length, 1)
    t.equal(rows[0].firstName, 'Sponge Bob')
    const mail = await lastMail(app, 'spongebob@bikinibottom.com')
    t.equal(mail?.kind, 'registration_attempt')
  })

  t.test('the password policy of the reference, field by field', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['bigbob27!', /uppercase/],
      ['BIGBOB27!', /lowercase/],
      ['BigBobby!', /digit/],
      ['BigBob277', /special character/],
      ['BigBob27"', /special character/], // a straight quote is not in the reference's set
    ]
    for (const [i, [password, problem]] of cases.entries()) {
      const res = await post('/v1/auth/register', body({ email: `policy-${i}@x.io`, password }))
      t.equal(res.statusCode, 400, password)
      t.equal(res.json().error, 'validation_failed')
      t.match(res.json().details, [{ field: 'password', problem }], password)
    }
    const short = await post('/v1/auth/register', body({ email: 'short@x.io', password: 'Bb1!' }))
    t.equal(short.statusCode, 400)
    t.match(short.json().details, [{ field: 'password', problem: 'must NOT have fewer than 8 characters' }])
    const long = await post('/v1/auth/register', body({ email: 'long@x.io', password: `Aa1!${'x'.repeat(96)}` }))
    t.equal(long.statusCode, 400)
    t.match(long.json().details, [{ field: 'password', problem: 'must NOT have more than 99 characters' }])
    for (const special of '^$*.[]{}()?-“!@#%&/,><’:;|_~+') {
      const res = await post(
        '/v1/auth/register',
        body({ email: `s${special.charCodeAt(0)}@x.io`, password: `Kelp${special}Forest9` }),
      )
      t.equal(res.statusCode, 200, `special ${special} is accepted`)
    }
  })

  t.test('common passwords are refused offline', async (t) => {
    for (const password of ['Password1!', 'Qwerty123!', 'Iloveyou1!']) {
      const res = await post('/v1/auth/register', body({ email: 'common@x.io', password }))
      t.equal(res.statusCode, 400, password)
      t.same(res.json(), {
        error: 'password_too_common',
        message: 'This password is among the most common ones; choose another.',
        details: [{ field: 'password', problem: 'is too common' }],
      })
    }
  })

  t.test('required fields and formats', async (t) => {
    const res = await post('/v1/auth/register', {
      email: 'not-an-email',
      password: 'BigBob27!',
      first_name: '',
      last_name: 'x'.repeat(151),
      toc_accepted_at: 'yesterday',
    })
    t.equal(res.statusCode, 400)
    const fields = res
      .json()
      .details.map((d: { field: string }) => d.field)
      .sort()
    t.same(fields, ['email', 'first_name', 'last_name', 'privacy_policy_accepted_at', 'toc_accepted_at'])
  })

  t.test('the client token is required, checked and revocable', async (t) => {
    const none = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: body({ email: 'n@x.io' }) })
    t.equal(none.statusCode, 401)
    t.same(none.json(), { error: 'invalid_client', message: 'A valid x-auth-token client token is required.' })
    const forged = Buffer.from(`wrong-secret+${client.client_id}`).toString('base64')
    const bad = await clientPost(app, forged)('/v1/auth/register', body({ email: 'n@x.io' }))
    t.equal(bad.statusCode, 401)
    t.equal(bad.json().error, 'invalid_client')
    const garbage = await clientPost(app, '%%%not base64%%%')('/v1/auth/register', body({ email: 'n@x.io' }))
    t.equal(garbage.statusCode, 401)
    const other = await createClient(app, 'to revoke')
    const { createClientAppRepository } = await import('../../routes/clients/repository.ts')
    await createClientAppRepository(app.db).revoke(other.client_id)
    const revoked = await clientPost(app, other.x_auth_token)('/v1/auth/register', body({ email: 'n@x.io' }))
    t.equal(revoked.statusCode, 401)
  })

  t.test('the e-mail is verified by code (API) or by the e-mailed link (redirect)', async (t) => {
    await post('/v1/auth/register', body({ email: 'verify@x.io' }))
    const code = await codeFromMail(app, 'verify@x.io', 'email_verification')
    const wrong = await post('/v1/auth/verify_email', {
      email: 'verify@x.io',
      code: code === '000000' ? '111111' : '000000',
    })
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json(), { error: 'invalid_code', message: 'The code is wrong, used or expired.' })
    const ok = await post('/v1/auth/verify_email', { email: 'verify@x.io', code })
    t.same(ok.json(), { status: 'success' })
    const [row] = await app.db.select().from(users).where(eq(users.email, 'verify@x.io'))
    t.ok(row.emailVerifiedAt)

    await post('/v1/auth/register', body({ email: 'link@x.io' }))
    const linkCode = await codeFromMail(app, 'link@x.io', 'email_verification')
    const bad = await app.inject({ method: 'GET', url: '/v1/auth/verify_email?email=link%40x.io&code=12345x' })
    t.equal(bad.statusCode, 404)
    t.equal(bad.json().error, 'not_found')
    const link = await app.inject({ method: 'GET', url: `/v1/auth/verify_email?email=link%40x.io&code=${linkCode}` })
    t.equal(link.statusCode, 302)
    t.equal(link.headers.location, 'nowatch://app/email-verified')
  })

  t.test('resend verification answers the same for any address', async (t) => {
    const unknown = await post('/v1/auth/resend_verification', { email: 'nobody@x.io' })
    t.same(unknown.json(), { status: 'success' })
    t.equal(await lastMail(app, 'nobody@x.io'), null)
    await post('/v1/auth/register', body({ email: 'again@x.io' }))
    const first = await codeFromMail(app, 'again@x.io', 'email_verification')
    const known = await post('/v1/auth/resend_verification', { email: 'again@x.io' })
    t.same(known.json(), { status: 'success' })
    const second = await codeFromMail(app, 'again@x.io', 'email_verification')
    const old = await post('/v1/auth/verify_email', { email: 'again@x.io', code: first })
    if (first !== second) t.equal(old.statusCode, 400, 'the earlier code no longer works')
    const ok = await post('/v1/auth/verify_email', { email: 'again@x.io', code: second })
    t.equal(ok.statusCode, 200)
  })
})
