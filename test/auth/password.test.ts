import { and, eq } from 'drizzle-orm'
import t from 'tap'
import { verificationCodes } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, codeFromMail, createClient, createUser, lastMail, login } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'

t.test('password reset, change and sign-out', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const probe = (tokens: { access: string }) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })
  const tryLogin = (email: string, password: string) => post('/v2/auth/login', { email, password })
  const NEW = 'Coral-Reef-77!'

  t.test('forgot_password answers the same whether or not the address exists', async (t) => {
    const unknown = await post('/v1/auth/forgot_password', { email: 'ghost@example.com' })
    t.equal(unknown.statusCode, 200)
    t.same(unknown.json(), { status: 'success' })
    t.equal(await lastMail(app, 'ghost@example.com'), null)
    const user = await createUser(app)
    const known = await post('/v1/auth/forgot_password', { email: user.email })
    t.same(known.json(), unknown.json())
    const mail = await lastMail(app, user.email, 'password_reset')
    t.match(mail?.text, /code is: \d{6}/)
    const [row] = await app.db.select().from(verificationCodes).where(eq(verificationCodes.userId, user.id))
    t.notMatch(row.codeHash, /^\d{6}$/, 'the code is stored hashed')
    t.ok(row.expiresAt.getTime() - Date.now() <= 15 * 60_000 + 1000, 'valid 15 minutes')
  })

  t.test('the right code sets the password, revokes every session, and works once', async (t) => {
    const user = await createUser(app)
    const a = await login(app, user)
    const b = await login(app, user)
    await post('/v1/auth/forgot_password', { email: user.email })
    const code = await codeFromMail(app, user.email, 'password_reset')
    const ok = await post('/v1/auth/confirm_new_password', {
      email: user.email,
      verification_code: code,
      new_password: NEW,
    })
    t.equal(ok.statusCode, 200)
    t.same(ok.json(), { status: 'success' })
    t.equal((await probe(a)).statusCode, 401)
    t.equal((await probe(b)).statusCode, 401)
    t.equal((await tryLogin(user.email, user.password)).statusCode, 401, 'the old password is gone')
    t.equal((await tryLogin(user.email, NEW)).statusCode, 200)
    const again = await post('/v1/auth/confirm_new_password', {
      email: user.email,
      verification_code: code,
      new_password: 'Another-One-88!',
    })
    t.equal(again.statusCode, 400)
    t.same(again.json(), { error: 'invalid_code', message: 'The code is wrong, used or expired.' })
  })

  t.test('five wrong tries burn the code; expired codes fail; unknown emails fail the same way', async (t) => {
    const user = await createUser(app)
    await post('/v1/auth/forgot_password', { email: user.email })
    const code = await codeFromMail(app, user.email, 'password_reset')
    const wrong = code === '123456' ? '654321' : '123456'
    for (let i = 0; i < 5; i++) {
      const res = await post('/v1/auth/confirm_new_password', {
        email: user.email,
        verification_code: wrong,
        new_password: NEW,
      })
      t.equal(res.json().error, 'invalid_code')
    }
    const burnt = await post('/v1/auth/confirm_new_password', {
      email: user.email,
      verification_code: code,
      new_password: NEW,
    })
    t.equal(burnt.statusCode, 400, 'the right code no longer works after five wrong ones')

    await post('/v1/auth/forgot_password', { email: user.email })
    const fresh = await codeFromMail(app, user.email, 'password_reset')
    await app.db
      .update(verificationCodes)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(and(eq(verificationCodes.userId, user.id), eq(verificationCodes.purpose, 'password_reset')))
    const expired = await post('/v1/auth/confirm_new_password', {
      email: user.email,
      verification_code: fresh,
      new_password: NEW,
    })
    t.equal(expired.json().error, 'invalid_code')

    const ghost = await post('/v1/auth/confirm_new_password', {
      email: 'ghost@example.com',
      verification_code: '123456',
      new_password: NEW,
    })
    t.same(ghost.json(), expired.json())
  })

  t.test('the new password must meet the policy', async (t) => {
    const weak = await post('/v1/auth/confirm_new_password', {
      email: 'x@example.com',
      verification_code: '123456',
      new_password: 'alllowercase1!',
    })
    t.equal(weak.statusCode, 400)
    t.match(weak.json(), { error: 'validation_failed', details: [{ field: 'new_password', problem: /uppercase/ }] })
    const common = await post('/v1/auth/confirm_new_password', {
      email: 'x@example.com',
      verification_code: '123456',
      new_password: 'Password123!',
    })
    t.equal(common.json().error, 'password_too_common')
  })

  t.test('change password: per-field errors, then other sessions end and this one stays', async (t) => {
    const user = await createUser(app)
    const current = await login(app, user)
    const other = await login(app, user)
    const change = (body: object) =>
      app.inject({ method: 'POST', url: '/v1/auth/change_password', headers: bearer(current), payload: body })
    const both = await change({ password_old: 'not mine', password_new: 'weak' })
    t.equal(both.statusCode, 400)
    t.equal(both.json().error, 'validation_failed')
    t.same(
      both.json().details.map((d: { field: string }) => d.field),
      ['password_new'],
      'length first, from the schema',
    )
    const wrongOld = await change({ password_old: 'not mine', password_new: 'nouppercase1!' })
    t.match(wrongOld.json().details, [
      { field: 'password_old', problem: 'is not your current password' },
      { field: 'password_new', problem: /uppercase/ },
    ])
    const same = await change({ password_old: user.password, password_new: user.password })
    t.same(same.json().details, [{ field: 'password_new', problem: 'must differ from the old password' }])
    const missing = await change({ password_new: NEW })
    t.same(missing.json().details, [{ field: 'password_old', problem: 'is required' }])
    const ok = await change({ password_old: user.password, password_new: NEW })
    t.equal(ok.statusCode, 200)
    t.same(ok.json(), { status: 'success' })
    t.equal((await probe(current)).statusCode, 200, 'this session stays')
    t.equal((await probe(other)).statusCode, 401, 'other sessions end')
    t.equal((await tryLogin(user.email, NEW)).statusCode, 200)
    t.equal((await lastMail(app, user.email))?.kind, 'password_changed')
  })

  t.test('sign-out: own account or an admin; anyone else is refused', async (t) => {
    const owner = await createUser(app)
    const stranger = await createUser(app)
    const admin = await createUser(app, { role: 'admin' })
    const ownerTokens = [await login(app, owner), await login(app, owner)]
    const strangerTokens = await login(app, stranger)
    const signOut = (tokens: { access: string }, email: string) =>
      app.inject({ method: 'POST', url: '/v1/auth/sign-out', headers: bearer(tokens), payload: { email } })

    const refused = await signOut(strangerTokens, owner.email)
    t.equal(refused.statusCode, 403)
    t.same(refused.json(), { error: 'forbidden', message: 'You can only sign out your own account.' })
    const refusedUnknown = await signOut(strangerTokens, 'ghost@example.com')
    t.same(refusedUnknown.json(), refused.json(), 'no hint whether the address exists')
    t.equal((await probe(ownerTokens[0])).statusCode, 200)

    const own = await signOut(ownerTokens[0], owner.email.toUpperCase())
    t.same(own.json(), { status: 'success' })
    t.equal((await probe(ownerTokens[0])).statusCode, 401)
    t.equal((await probe(ownerTokens[1])).statusCode, 401)

    const adminTokens = await login(app, admin)
    const byAdmin = await signOut(adminTokens, stranger.email)
    t.same(byAdmin.json(), { status: 'success' })
    t.equal((await probe(strangerTokens)).statusCode, 401)
    const unknown = await signOut(adminTokens, 'ghost@example.com')
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.json().error, 'no_such_user')
    const noBearer = await app.inject({
      method: 'POST',
      url: '/v1/auth/sign-out',
      headers: { 'x-auth-token': client.x_auth_token },
      payload: { email: owner.email },
    })
    t.equal(noBearer.statusCode, 401)
  })
})
