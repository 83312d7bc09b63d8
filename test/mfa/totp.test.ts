import { and, eq } from 'drizzle-orm'
import t from 'tap'
import { auditLog, mfaRecoveryCodes, mfaTotpFactors } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createClient, createUser, lastMail, login, userWithToken } from '../helpers/fixtures.ts'
import { clientPost, decodeJwt } from '../helpers/http.ts'
import { enrolTotp, stepStart, totpAt } from '../helpers/mfa.ts'

// The TOTP clock is the test's: codes are made with otplib for chosen instants, nothing sleeps.
const T0 = stepStart(Date.now())
let clock = T0

/** Enrols ten steps before T0, so that the codes of T0's window are still unused; leaves the clock at T0. */
async function enrolEarlier(app: Parameters<typeof enrolTotp>[0], headers: Record<string, string>) {
  clock = stepStart(T0, -10)
  try {
    return await enrolTotp(app, headers, clock)
  } finally {
    clock = T0
  }
}

t.test('TOTP and recovery codes', async (t) => {
  const app = await buildTestApp(t, { clock: () => clock })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)

  /** A password login that stops at the second factor; answers its mfa_token. */
  async function startLogin(user: { email: string; password: string }) {
    const res = await post('/v2/auth/login', { email: user.email, password: user.password })
    t.equal(res.statusCode, 401, 'a login with a factor does not answer tokens')
    const body = res.json()
    t.match(body, { error: 'mfa_required', message: String, mfa_token: String, mfa_token_expires_in: 300 })
    t.same(Object.keys(body).sort(), ['error', 'message', 'mfa_token', 'mfa_token_expires_in'])
    return body.mfa_token as string
  }
  const verify = (payload: Record<string, unknown>) => post('/v1/auth/mfa/verify', payload)
  const reauth = (headers: Record<string, string>, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/v1/auth/reauthenticate', headers, payload })

  t.test('enrolment: secret, otpauth URI and QR code; active only once a code is confirmed', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const res = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.match(body, { secret: /^[A-Z2-7]{32}$/, algorithm: 'SHA1', digits: 6, period: 30 })
    const uri = new URL(body.otpauth_uri)
    t.equal(uri.protocol, 'otpauth:')
    t.equal(uri.searchParams.get('secret'), body.secret)
    t.match(decodeURIComponent(uri.pathname), user.email)
    t.match(body.qr_code, /^data:image\/svg\+xml;base64,/)
    t.match(Buffer.from(body.qr_code.split(',')[1], 'base64').toString(), /^<svg/)

    const [row] = await app.db.select().from(mfaTotpFactors).where(eq(mfaTotpFactors.userId, user.id))
    t.notOk(row.secretEncrypted.includes(body.secret), 'the secret is stored encrypted')
    t.equal(row.confirmedAt, null)
    t.same((await app.inject({ method: 'GET', url: '/v1/users/me/mfa', headers })).json(), {
      totp: null,
      recovery_codes: null,
      passkeys: [],
    })
    // Pending: the login is still the password alone.
    t.equal((await post('/v2/auth/login', { email: user.email, password: user.password })).statusCode, 200)

    const wrong = await app.inject({
      method: 'POST',
      url: '/v1/users/me/mfa/totp/confirm',
      headers,
      payload: { code: await totpAt(body.secret, T0 + 90_000) },
    })
    t.equal(wrong.statusCode, 400)
    t.equal(wrong.json().error, 'invalid_code')

    const ok = await app.inject({
      method: 'POST',
      url: '/v1/users/me/mfa/totp/confirm',
      headers,
      payload: { code: await totpAt(body.secret, T0 - 30_000) },
    })
    t.equal(ok.statusCode, 200, 'the step before is inside the window')
    const codes = ok.json().recovery_codes as string[]
    t.equal(codes.length, 10)
    t.equal(new Set(codes).size, 10)
    for (const c of codes) t.match(c, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/)
    const stored = await app.db.select().from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, user.id))
    t.equal(stored.length, 10)
    t.notOk(
      stored.some((s) => codes.some((c) => s.codeHash.includes(c) || s.codeHash.includes(c.replace('-', '')))),
      'only hashes are stored',
    )
    t.equal((await lastMail(app, user.email, 'mfa_factor_added'))?.kind, 'mfa_factor_added')

    const factors = (await app.inject({ method: 'GET', url: '/v1/users/me/mfa', headers })).json()
    t.match(factors, { totp: { enabled: true, created: String }, recovery_codes: { remaining: 10 }, passkeys: [] })
    const again = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers })
    t.equal(again.statusCode, 409)
    t.equal(again.json().error, 'totp_already_enabled')

    const exported = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers })
    const section = JSON.parse(exported.body).sections.second_factors
    t.match(section, [
      { kind: 'totp', created: String },
      { kind: 'recovery_codes', remaining: 10 },
    ])
    t.notOk(exported.body.includes(body.secret), 'the export lists factors, never their secrets')
    t.notOk(exported.body.includes(row.secretEncrypted))
  })

  t.test('the window at the start of a step: ±1 step, each step once', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const { secret } = await enrolEarlier(app, headers)
    const fresh = (await login(app, user).catch(() => null)) ?? null
    t.equal(fresh, null, 'the password alone no longer logs in')
    const at = (n: number) => totpAt(secret, stepStart(T0, n))
    const N = T0 // the clock sits on the first millisecond of step N

    clock = N
    for (const n of [-2, 2]) {
      const res = await verify({ mfa_token: await startLogin(user), code: await at(n) })
      t.equal(res.statusCode, 401, `step ${n} is outside the window`)
      t.same(res.json(), { error: 'invalid_code', message: 'The code is wrong, already used or expired.' })
    }
    const first = await verify({ mfa_token: await startLogin(user), code: await at(-1) })
    t.equal(first.statusCode, 200, 'the step before is accepted')
    const tokens = first.json()
    t.same(Object.keys(tokens).sort(), ['access', 'expiresIn', 'refresh'])
    const claims = decodeJwt(tokens.access)
    t.same(claims.amr, ['pwd', 'otp'])
    t.equal(claims.aal, 2)
    t.ok(Math.abs((claims.auth_time as number) - Date.now() / 1000) < 60)

    const replay = await verify({ mfa_token: await startLogin(user), code: await at(-1) })
    t.equal(replay.json().error, 'invalid_code', 'the same code twice is refused')
    t.equal((await verify({ mfa_token: await startLogin(user), code: await at(0) })).statusCode, 200, 'this step')
    t.equal((await verify({ mfa_token: await startLogin(user), code: await at(1) })).statusCode, 200, 'the next step')
    const older = await verify({ mfa_token: await startLogin(user), code: await at(0) })
    t.equal(older.json().error, 'invalid_code', 'a step older than the last one used is refused too')

    const sessions = await app.inject({ method: 'GET', url: '/v1/users/me/sessions', headers: bearer(tokens) })
    t.same(
      sessions
        .json()
        .data.map((s: { method: string }) => s.method)
        .sort(),
      ['mfa', 'mfa', 'mfa', 'password'],
      'the sessions list shows how each one was opened',
    )
    void headers
  })

  t.test('the window at the end of a step', async (t) => {
    const { user, headers } = await userWithToken(app)
    const { secret } = await enrolEarlier(app, headers)
    clock = stepStart(T0, 1) - 1 // the last millisecond of step N
    const at = (n: number) => totpAt(secret, stepStart(T0, n))
    for (const n of [-2, 2]) {
      t.equal((await verify({ mfa_token: await startLogin(user), code: await at(n) })).statusCode, 401, `step ${n}`)
    }
    t.equal((await verify({ mfa_token: await startLogin(user), code: await at(-1) })).statusCode, 200, 'step before')
    t.equal((await verify({ mfa_token: await startLogin(user), code: await at(1) })).statusCode, 200, 'step after')
    t.equal((await verify({ mfa_token: await startLogin(user), code: await at(0) })).statusCode, 401, 'older step')
  })

  t.test('recovery codes: once each, any case and spacing; regenerating voids the old set', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const { recoveryCodes } = await enrolTotp(app, headers, T0)
    const first = await verify({ mfa_token: await startLogin(user), code: recoveryCodes[0] })
    t.equal(first.statusCode, 200)
    t.same(decodeJwt(first.json().access).amr, ['pwd', 'otp'])
    const again = await verify({ mfa_token: await startLogin(user), code: recoveryCodes[0] })
    t.equal(again.json().error, 'invalid_code', 'a recovery code works once')
    const typed = ` ${recoveryCodes[1].toLowerCase().replace('-', ' ')} `
    t.equal((await verify({ mfa_token: await startLogin(user), code: typed })).statusCode, 200, 'as typed')
    const summary = (await app.inject({ method: 'GET', url: '/v1/users/me/mfa', headers })).json()
    t.equal(summary.recovery_codes.remaining, 8)

    const fresh = bearer(first.json())
    const regen = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/recovery-codes', headers: fresh })
    t.equal(regen.statusCode, 200, 'a session that used its second factor may make new codes')
    const next = regen.json().recovery_codes as string[]
    t.equal(next.length, 10)
    const old = await verify({ mfa_token: await startLogin(user), code: recoveryCodes[2] })
    t.equal(old.json().error, 'invalid_code', 'the old set is void')
    t.equal((await verify({ mfa_token: await startLogin(user), code: next[0] })).statusCode, 200)
    t.equal((await lastMail(app, user.email, 'mfa_recovery_codes_regenerated'))?.kind, 'mfa_recovery_codes_regenerated')
  })

  t.test('the mfa_token: single use, bound to its client app, few tries, needs exactly one factor', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const { recoveryCodes } = await enrolTotp(app, headers, T0)
    const token = await startLogin(user)
    const other = await createClient(app, 'other app')
    const elsewhere = await clientPost(app, other.x_auth_token)('/v1/auth/mfa/verify', {
      mfa_token: token,
      code: recoveryCodes[0],
    })
    t.equal(elsewhere.statusCode, 401)
    t.equal(elsewhere.json().error, 'invalid_mfa_token', 'another client app cannot finish the login')
    const none = await verify({ mfa_token: token })
    t.equal(none.statusCode, 400)
    t.equal(none.json().error, 'validation_failed')
    const both = await verify({ mfa_token: token, code: '123456', passkey: undefined, extra: 1 })
    t.equal(both.statusCode, 400)
    t.equal((await verify({ mfa_token: token, code: recoveryCodes[0] })).statusCode, 200)
    const reused = await verify({ mfa_token: token, code: recoveryCodes[1] })
    t.equal(reused.json().error, 'invalid_mfa_token', 'the token works once')
    const unknown = await verify({ mfa_token: 'x'.repeat(43), code: recoveryCodes[1] })
    t.equal(unknown.json().error, 'invalid_mfa_token')
    t.equal((await post('/v1/auth/mfa/verify', { code: '123456' })).statusCode, 400)
    const noClient = await app.inject({
      method: 'POST',
      url: '/v1/auth/mfa/verify',
      payload: { mfa_token: token, code: '123456' },
    })
    t.equal(noClient.statusCode, 401, 'behind the client token')
  })

  t.test('failed codes count per account with backoff, like passwords', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const { secret } = await enrolEarlier(app, headers)
    const spare = await startLogin(user)
    const token = await startLogin(user)
    for (let i = 0; i < 5; i++) {
      const res = await verify({ mfa_token: token, code: await totpAt(secret, stepStart(T0, 5)) })
      t.equal(res.json().error, 'invalid_code', `failure ${i + 1}`)
    }
    const spent = await verify({ mfa_token: token, code: await totpAt(secret, T0) })
    t.equal(spent.json().error, 'invalid_mfa_token', 'a token has five tries')
    const throttled = await verify({ mfa_token: spare, code: await totpAt(secret, T0) })
    t.equal(throttled.statusCode, 429, 'even the right code waits out the backoff')
    t.equal(throttled.json().error, 'rate_limited')
    t.ok(Number(throttled.headers['retry-after']) >= 1)
    const password = await post('/v2/auth/login', { email: user.email, password: user.password })
    t.equal(password.statusCode, 429, 'the password login of the account backs off too')
    const history = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers })
    t.equal(
      history.json().data.filter((h: { reason: string | null }) => h.reason === 'invalid_mfa_code').length,
      5,
      'the failures are in the authorization history',
    )
  })

  t.test('refresh keeps amr and aal; accounts without a factor keep the seed contract', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const plain = await login(app, user)
    t.same(decodeJwt(plain.access).amr, ['pwd'])
    t.equal(decodeJwt(plain.access).aal, 1)
    const { recoveryCodes } = await enrolTotp(app, headers, T0)
    const tokens = (await verify({ mfa_token: await startLogin(user), code: recoveryCodes[0] })).json()
    const refreshed = await post('/v1/auth/refresh', { refresh: tokens.refresh })
    t.equal(refreshed.statusCode, 200)
    const claims = decodeJwt(refreshed.json().access)
    t.same(claims.amr, ['pwd', 'otp'])
    t.equal(claims.aal, 2)
    t.equal(claims.auth_time, decodeJwt(tokens.access).auth_time, 'a refresh is not a new authentication')
  })

  t.test('step-up: each sensitive route needs a recent authentication', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const friend = await createUser(app)
    const sid = decodeJwt(headers.authorization.slice(7)).sid as string
    const now = Math.floor(Date.now() / 1000)
    // The same session, authenticated an hour ago (as after many refreshes).
    const stale = {
      authorization: `Bearer ${app.jwt.sign({ sub: user.id, sid, role: 'user', amr: ['pwd'], aal: 1, auth_time: now - 3600, iat: now, nbf: now, exp: now + 600 } as never)}`,
    }
    const routes = [
      { method: 'POST', url: '/v1/sharing/invites', payload: { email: friend.email, scopes: ['measurement'] } },
      {
        method: 'POST',
        url: '/v1/auth/change_password',
        payload: { password_old: user.password, password_new: 'Another-Tide-43!' },
      },
      { method: 'DELETE', url: '/v1/users/me', payload: { password: user.password } },
    ] as const
    for (const r of routes) {
      const res = await app.inject({ ...r, headers: stale })
      t.equal(res.statusCode, 401, `${r.method} ${r.url}`)
      t.same(res.json(), {
        error: 'reauthentication_required',
        message:
          'Confirm it is you: POST /v1/auth/reauthenticate with your password, then retry with the new access token.',
      })
    }
    const wrong = await reauth(stale, { password: 'Not-the-password-1!' })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.json().error, 'invalid_credentials')
    const fresh = await reauth(stale, { password: user.password })
    t.equal(fresh.statusCode, 200)
    const claims = decodeJwt(fresh.json().access)
    t.equal(claims.sid, sid, 'the same session')
    t.ok((claims.auth_time as number) >= now)
    const freshHeaders = bearer(fresh.json())
    const share = await app.inject({ ...routes[0], headers: freshHeaders })
    t.equal(share.statusCode, 201)
    const change = await app.inject({ ...routes[1], headers: freshHeaders })
    t.equal(change.statusCode, 200)
    const gone = await app.inject({ ...routes[2], headers: freshHeaders, payload: { password: 'Another-Tide-43!' } })
    t.equal(gone.statusCode, 200)
  })

  t.test('step-up with a factor: the password alone is not enough, the factor is', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    const { secret } = await enrolEarlier(app, headers)
    // This session logged in before the factor existed: it never used it.
    const removeTotp = (h: Record<string, string>) =>
      app.inject({ method: 'DELETE', url: '/v1/users/me/mfa/totp', headers: h })
    const refused = await removeTotp(headers)
    t.equal(refused.statusCode, 401)
    t.same(refused.json(), {
      error: 'reauthentication_required',
      message:
        'Confirm it is you with your second factor: POST /v1/auth/reauthenticate with a code or a passkey, then retry with the new access token.',
    })
    const withPassword = await reauth(headers, { password: user.password })
    t.equal(withPassword.statusCode, 200)
    t.equal((await removeTotp(bearer(withPassword.json()))).statusCode, 401, 'a password re-authentication does not do')
    const regen = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/recovery-codes', headers })
    t.equal(regen.json().error, 'reauthentication_required')

    const both = await reauth(headers, { password: user.password, code: '123456' })
    t.equal(both.statusCode, 400, 'one method at a time')
    clock = T0
    const withCode = await reauth(bearer(withPassword.json()), { code: await totpAt(secret, T0) })
    t.equal(withCode.statusCode, 200)
    const claims = decodeJwt(withCode.json().access)
    t.same(claims.amr, ['otp'])
    t.equal(claims.aal, 2)
    const replay = await reauth(bearer(withCode.json()), { code: await totpAt(secret, T0) })
    t.equal(replay.json().error, 'invalid_code', 'a re-authentication code works once too')
    const removed = await removeTotp(bearer(withCode.json()))
    t.equal(removed.statusCode, 200)
    t.equal((await lastMail(app, user.email, 'mfa_factor_removed'))?.kind, 'mfa_factor_removed')
    t.same((await app.inject({ method: 'GET', url: '/v1/users/me/mfa', headers })).json(), {
      totp: null,
      recovery_codes: null,
      passkeys: [],
    })
    t.equal((await post('/v2/auth/login', { email: user.email, password: user.password })).statusCode, 200)
    t.equal((await removeTotp(bearer(withCode.json()))).statusCode, 404, 'nothing left to remove')
  })

  t.test('cross-user: B cannot see, use or remove A’s factor', async (t) => {
    clock = T0
    const a = await userWithToken(app)
    const b = await userWithToken(app)
    const { secret, recoveryCodes } = await enrolEarlier(app, a.headers)
    t.same((await app.inject({ method: 'GET', url: '/v1/users/me/mfa', headers: b.headers })).json(), {
      totp: null,
      recovery_codes: null,
      passkeys: [],
    })
    const bCode = await reauth(b.headers, { code: await totpAt(secret, T0) })
    t.equal(bCode.json().error, 'invalid_code', "A's code means nothing for B")
    const bRecovery = await reauth(b.headers, { code: recoveryCodes[0] })
    t.equal(bRecovery.json().error, 'invalid_code')
    const bDelete = await app.inject({ method: 'DELETE', url: '/v1/users/me/mfa/totp', headers: b.headers })
    t.equal(bDelete.statusCode, 404, 'B has nothing to remove; A keeps the factor')
    const [row] = await app.db
      .select()
      .from(mfaTotpFactors)
      .where(and(eq(mfaTotpFactors.userId, a.user.id)))
    t.ok(row.confirmedAt)
  })

  t.test('an admin resets a user’s factors: audited, the user is told', async (t) => {
    clock = T0
    const { user, headers } = await userWithToken(app)
    await enrolTotp(app, headers, T0)
    const admin = await userWithToken(app, { role: 'admin' })
    const res = await app.inject({
      method: 'POST',
      url: `/v1/admin/users/${user.id}/mfa/reset`,
      headers: admin.headers,
    })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success', totp_removed: true, passkeys_removed: 0 })
    t.equal((await post('/v2/auth/login', { email: user.email, password: user.password })).statusCode, 200)
    t.equal((await lastMail(app, user.email, 'mfa_factors_reset'))?.kind, 'mfa_factors_reset')
    const [entry] = await app.db.select().from(auditLog).where(eq(auditLog.action, 'user.mfa_reset'))
    t.match(entry, { actorId: admin.user.id, targetType: 'user', targetId: user.id, details: { totp: 1, passkeys: 0 } })
    const asUser = await app.inject({ method: 'POST', url: `/v1/admin/users/${user.id}/mfa/reset`, headers })
    t.equal(asUser.statusCode, 403)
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/admin/users/00000000-0000-4000-8000-000000000000/mfa/reset',
      headers: admin.headers,
    })
    t.equal(unknown.statusCode, 404)
  })
})

t.test('ADMIN_MFA_REQUIRED: admins need a second factor, their tokens carry aal2', async (t) => {
  clock = T0
  const app = await buildTestApp(t, { clock: () => clock, env: { ADMIN_MFA_REQUIRED: 'true' } })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const admin = await createUser(app, { role: 'admin' })

  const refused = await post('/v2/auth/login/admin', { email: admin.email, password: admin.password })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().error, 'mfa_enrollment_required')
  // The user login still works, to enrol, but its token has no admin power.
  const plain = (await post('/v2/auth/login', { email: admin.email, password: admin.password })).json()
  const adminRoute = (h: Record<string, string>) => app.inject({ method: 'GET', url: '/v1/admin/users', headers: h })
  const noPower = await adminRoute(bearer(plain))
  t.equal(noPower.statusCode, 403)
  t.equal(noPower.json().error, 'forbidden', 'the user login gives a user-role token, also to an admin')
  const { secret } = await enrolEarlier(app, bearer(plain))

  const step = await post('/v2/auth/login/admin', { email: admin.email, password: admin.password })
  t.equal(step.statusCode, 401)
  t.equal(step.json().error, 'mfa_required')
  const done = await post('/v1/auth/mfa/verify', { mfa_token: step.json().mfa_token, code: await totpAt(secret, T0) })
  t.equal(done.statusCode, 200)
  const claims = decodeJwt(done.json().access)
  t.equal(claims.aal, 2)
  t.equal(claims.role, 'admin')
  t.equal((await adminRoute(bearer(done.json()))).statusCode, 200)

  const user = await createUser(app)
  t.equal(
    (await post('/v2/auth/login', { email: user.email, password: user.password })).statusCode,
    200,
    'users without a factor are not concerned',
  )
  t.equal(app.config.ADMIN_MFA_REQUIRED, true)
})
