import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, codeFromMail, createUser, lastMail, login, sharedClient, uniqueEmail } from '../helpers/fixtures.ts'

t.test('changing the e-mail address', async (t) => {
  const app = await buildTestApp(t)
  const me = (tokens: { access: string }) => app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(tokens) })
  const patch = (tokens: { access: string }, payload: object) =>
    app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(tokens), payload })
  const confirm = (tokens: { access: string }, code: string) =>
    app.inject({ method: 'POST', url: '/v1/users/me/email/confirm', headers: bearer(tokens), payload: { code } })

  t.test('a new address is pending until the code mailed there comes back', async (t) => {
    const user = await createUser(app)
    const tokens = await login(app, user)
    const other = await login(app, user)
    const next = uniqueEmail('moved')
    const res = await patch(tokens, { email: next.toUpperCase(), password: user.password, first_name: 'Moved' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { email: user.email, pending_email: next, first_name: 'Moved' }, 'the old address stays')
    t.same((await me(tokens)).json().pending_email, next)
    const old = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': await sharedClient(app) },
      payload: { email: next, password: user.password },
    })
    t.equal(old.statusCode, 401, 'the new address does not log in yet')

    const code = await codeFromMail(app, next, 'email_change')
    const wrong = await confirm(tokens, code === '000000' ? '111111' : '000000')
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json(), { error: 'invalid_code', message: 'The code is wrong, used or expired.' })

    const done = await confirm(tokens, code)
    t.equal(done.statusCode, 200, done.body)
    t.match(done.json(), { email: next, pending_email: null, email_verified: true })
    const told = await lastMail(app, user.email, 'email_changed')
    t.ok(told, 'the old address is told')
    t.match(told?.text, next)
    t.equal((await me(tokens)).statusCode, 200, 'this session stays')
    const ended = await me(other)
    t.equal(ended.statusCode, 401, 'every other session ends')
    t.equal(ended.json().error, 'session_revoked')
    t.ok(await login(app, { email: next, password: user.password }), 'the new address logs in')
    t.equal((await confirm(tokens, code)).statusCode, 400, 'a code works once')
  })

  t.test('the current password is required', async (t) => {
    const user = await createUser(app)
    const tokens = await login(app, user)
    const missing = await patch(tokens, { email: uniqueEmail() })
    t.equal(missing.statusCode, 400)
    t.same(missing.json().details, [
      { field: 'password', problem: 'is required (your current password) to change the e-mail address' },
    ])
    const wrong = await patch(tokens, { email: uniqueEmail(), password: 'Not-Mine-123!' })
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json().details, [{ field: 'password', problem: 'is not your current password' }])
    t.equal((await me(tokens)).json().pending_email, null, 'nothing pending after a refusal')
    const same = await patch(tokens, { email: user.email.toUpperCase() })
    t.equal(same.statusCode, 200, 'the current address needs no password: no change')
  })

  t.test('an address taken by another account answers the same, and its owner is told', async (t) => {
    const user = await createUser(app)
    const owner = await createUser(app)
    const tokens = await login(app, user)
    const free = uniqueEmail('free')
    const a = await patch(tokens, { email: owner.email.toUpperCase(), password: user.password })
    const aBody = a.json()
    const b = await patch(tokens, { email: free, password: user.password })
    t.equal(a.statusCode, b.statusCode)
    t.same(Object.keys(aBody).sort(), Object.keys(b.json()).sort())
    t.equal(aBody.pending_email, owner.email, 'the same pending state for a taken address')
    t.equal(aBody.email, user.email)
    t.ok(await lastMail(app, owner.email, 'email_change_attempt'), "the taken address's owner is told")
    t.equal(await lastMail(app, owner.email, 'email_change'), null, 'no code goes to the taken address')

    // Back to the taken address: no code that could confirm it exists anywhere.
    await patch(tokens, { email: owner.email, password: user.password })
    const code = await codeFromMail(app, free, 'email_change')
    t.equal((await confirm(tokens, code)).statusCode, 400, "the free address's code was replaced")
    t.equal((await me(tokens)).json().email, user.email)
  })

  t.test('an address registered while the change waited is refused at confirmation', async (t) => {
    const user = await createUser(app)
    const tokens = await login(app, user)
    const next = uniqueEmail('race')
    await patch(tokens, { email: next, password: user.password })
    const code = await codeFromMail(app, next, 'email_change')
    await createUser(app, { email: next })
    const res = await confirm(tokens, code)
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'invalid_code')
    t.equal((await me(tokens)).json().email, user.email)
  })

  t.test("one account's code does not confirm another's change", async (t) => {
    const a = await createUser(app)
    const b = await createUser(app)
    const ta = await login(app, a)
    const tb = await login(app, b)
    const next = uniqueEmail('a-next')
    await patch(ta, { email: next, password: a.password })
    await patch(tb, { email: uniqueEmail('b-next'), password: b.password })
    const code = await codeFromMail(app, next, 'email_change')
    t.equal((await confirm(tb, code)).statusCode, 400)
    t.equal((await confirm(ta, code)).statusCode, 200)
  })
})

t.test(
  'wrong passwords are counted per account, with the other password re-checks: backoff from the 6th',
  async (t) => {
    const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
    const user = await createUser(app)
    const tokens = await login(app, user)
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      const res = await app.inject({
        method: 'PATCH',
        url: '/v1/users/me',
        headers: bearer(tokens),
        payload: { email: uniqueEmail(), password: `Wrong-Guess-${i}!` },
      })
      statuses.push(res.statusCode)
    }
    t.same(statuses, [400, 400, 400, 400, 400, 429], "login's curve: five free tries, then each waits longer")
    const other = await app.inject({
      method: 'POST',
      url: '/v1/auth/change_password',
      headers: bearer(tokens),
      payload: { password_old: 'Another-Guess-1!', password_new: 'Fresh-Secret-77!' },
    })
    t.equal(other.statusCode, 429, 'the count is the account’s, shared with change password')
  },
)
