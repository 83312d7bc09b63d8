import { eq } from 'drizzle-orm'
import t from 'tap'
import { loginAttempts, users } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createClient, createUser, login } from '../helpers/fixtures.ts'
import { clientPost, decodeJwt } from '../helpers/http.ts'

t.test('login', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const me = (tokens: { access: string }) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })

  t.test('v2 and legacy v1 answer the seed token shape with the documented claims', async (t) => {
    const user = await createUser(app)
    for (const url of ['/v2/auth/login', '/v1/auth/login']) {
      const res = await post(url, { email: user.email.toUpperCase(), password: user.password })
      t.equal(res.statusCode, 200, url)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['access', 'expiresIn', 'refresh'])
      t.equal(body.expiresIn, 3600)
      const access = decodeJwt(body.access)
      t.equal(access.sub, user.id)
      t.equal(access.role, 'user')
      t.match(access.sid, /^[0-9a-f-]{36}$/)
      t.equal((access.exp as number) - (access.nbf as number), 3600)
      t.equal(JSON.parse(Buffer.from(body.access.split('.')[0], 'base64url').toString()).alg, 'HS256')
      const refresh = decodeJwt(body.refresh)
      t.equal(refresh.typ, 'refresh')
      t.equal(refresh.sid, access.sid)
      t.equal((await me(body)).statusCode, 200, 'the access token works')
    }
  })

  t.test('a wrong password and an unknown email get one generic answer', async (t) => {
    const user = await createUser(app)
    const wrong = await post('/v2/auth/login', { email: user.email, password: 'Wrong-Password-1' })
    const unknown = await post('/v2/auth/login', { email: 'nobody-here@example.com', password: 'Wrong-Password-1' })
    t.equal(wrong.statusCode, 401)
    t.equal(unknown.statusCode, 401)
    t.same(wrong.json(), { error: 'invalid_credentials', message: 'Email or password is incorrect.' })
    t.same(unknown.json(), wrong.json())
  })

  t.test('the admin login is for admins only, and tells a non-admin nothing', async (t) => {
    const user = await createUser(app)
    const admin = await createUser(app, { role: 'admin' })
    const refused = await post('/v2/auth/login/admin', { email: user.email, password: user.password })
    const wrongPw = await post('/v2/auth/login/admin', { email: user.email, password: 'Not-The-One-1!' })
    t.equal(refused.statusCode, 401)
    t.same(refused.json(), { error: 'invalid_credentials', message: 'Email or password is incorrect.' })
    t.same(
      { status: refused.statusCode, body: refused.body, type: refused.headers['content-type'] },
      { status: wrongPw.statusCode, body: wrongPw.body, type: wrongPw.headers['content-type'] },
      "a user's correct password answers exactly as a wrong one",
    )
    const history = await app.db
      .select({ success: loginAttempts.success, reason: loginAttempts.reason })
      .from(loginAttempts)
      .where(eq(loginAttempts.userId, user.id))
    t.same(
      history,
      [
        { success: false, reason: 'invalid_credentials' },
        { success: false, reason: 'invalid_credentials' },
      ],
      'both count as failed logins (same backoff)',
    )
    const ok = await post('/v2/auth/login/admin', { email: admin.email, password: admin.password })
    t.equal(ok.statusCode, 200)
    t.equal(decodeJwt(ok.json().access).role, 'admin')
    const wrong = await post('/v2/auth/login/admin', { email: admin.email, password: 'nope' })
    t.equal(wrong.json().error, 'invalid_credentials')
  })

  t.test('the user login of an admin gives a user-role session, on every route and after refresh', async (t) => {
    const admin = await createUser(app, { role: 'admin' })
    for (const url of ['/v2/auth/login', '/v1/auth/login']) {
      const res = await post(url, { email: admin.email, password: admin.password })
      t.equal(res.statusCode, 200)
      const tokens = res.json()
      t.equal(decodeJwt(tokens.access).role, 'user', `${url}: the token says user`)
      const adminRoute = await app.inject({ method: 'GET', url: '/v1/admin/users', headers: bearer(tokens) })
      t.equal(adminRoute.statusCode, 403, `${url}: no admin route`)
      t.same(adminRoute.json(), { error: 'forbidden', message: 'This route is for administrators.' })
      const refreshed = await post('/v1/auth/refresh', { refresh: tokens.refresh })
      t.equal(decodeJwt(refreshed.json().access).role, 'user', 'a refresh keeps the session role')
      const again = await app.inject({ method: 'GET', url: '/v1/admin/users', headers: bearer(refreshed.json()) })
      t.equal(again.statusCode, 403)
    }
    const elevated = (await post('/v2/auth/login/admin', { email: admin.email, password: admin.password })).json()
    const ok = await app.inject({ method: 'GET', url: '/v1/admin/users', headers: bearer(elevated) })
    t.equal(ok.statusCode, 200, 'the admin login session passes')
    const refreshed = (await post('/v1/auth/refresh', { refresh: elevated.refresh })).json()
    t.equal(decodeJwt(refreshed.access).role, 'admin', 'and stays admin through a refresh')
  })

  t.test('an account unverified past the deadline is locked until it verifies', async (t) => {
    const fresh = await createUser(app, { verified: false })
    t.equal(
      (await post('/v2/auth/login', { email: fresh.email, password: fresh.password })).statusCode,
      200,
      'within the deadline',
    )
    const old = await createUser(app, { verified: false, createdAt: new Date(Date.now() - 8 * 86400_000) })
    const locked = await post('/v2/auth/login', { email: old.email, password: old.password })
    t.equal(locked.statusCode, 403)
    t.equal(locked.json().error, 'account_locked')
    const wrongPw = await post('/v2/auth/login', { email: old.email, password: 'not it' })
    t.equal(wrongPw.json().error, 'invalid_credentials', 'the lock is only told to whoever knows the password')
    await app.db.update(users).set({ emailVerifiedAt: new Date() }).where(eq(users.id, old.id))
    t.equal((await post('/v2/auth/login', { email: old.email, password: old.password })).statusCode, 200)
  })

  t.test('past the deadline an unverified account is locked on refresh and on every bearer request', async (t) => {
    const user = await createUser(app, { verified: false })
    const tokens = (await post('/v2/auth/login', { email: user.email, password: user.password })).json()
    t.equal((await me(tokens)).statusCode, 200, 'within the deadline')
    await app.db
      .update(users)
      .set({ createdAt: new Date(Date.now() - 8 * 86400_000) })
      .where(eq(users.id, user.id))
    app.sessionCache.invalidate(String(decodeJwt(tokens.access).sid)) // as SESSION_CACHE_TTL_MS later would
    const locked = {
      error: 'account_locked',
      message: 'Verify your e-mail address to unlock this account; a new link can be requested.',
    }
    const bearerCall = await me(tokens)
    t.equal(bearerCall.statusCode, 403)
    t.same(bearerCall.json(), locked, 'the access token is refused with the login error')
    const write = await app.inject({
      method: 'PATCH',
      url: '/v1/users/me',
      headers: bearer(tokens),
      payload: { first_name: 'Late' },
    })
    t.equal(write.statusCode, 403, 'no writes after the deadline')
    const refreshed = await post('/v1/auth/refresh', { refresh: tokens.refresh })
    t.equal(refreshed.statusCode, 403)
    t.same(refreshed.json(), locked, 'the refresh token too')
    await app.db.update(users).set({ emailVerifiedAt: new Date() }).where(eq(users.id, user.id))
    app.sessionCache.invalidate(String(decodeJwt(tokens.access).sid))
    t.equal((await me(tokens)).statusCode, 200, 'verifying unlocks the same session')
    t.equal((await post('/v1/auth/refresh', { refresh: tokens.refresh })).statusCode, 200)
  })

  t.test('a disabled account cannot log in', async (t) => {
    const user = await createUser(app)
    await app.db.update(users).set({ disabledAt: new Date() }).where(eq(users.id, user.id))
    const res = await post('/v2/auth/login', { email: user.email, password: user.password })
    t.equal(res.statusCode, 403)
    t.equal(res.json().error, 'account_disabled')
  })

  t.test('every character of a long password counts (no bcrypt truncation at 72 bytes)', async (t) => {
    const base = `Aa1!${'é'.repeat(40)}` // 84 bytes
    const user = await createUser(app, { password: `${base}X` })
    t.equal((await post('/v2/auth/login', { email: user.email, password: `${base}Y` })).statusCode, 401)
    t.equal((await post('/v2/auth/login', { email: user.email, password: `${base}X` })).statusCode, 200)
  })

  t.test('the hash is upgraded at login when the cost changes', async (t) => {
    const user = await createUser(app)
    const before = (await app.db.select().from(users).where(eq(users.id, user.id)))[0].passwordHash
    t.match(before, /^\$2b\$04\$/)
    const app5 = await buildTestApp(t, { env: { BCRYPT_COST: '5' }, database: app.database })
    await login(app5, user)
    const after = (await app.db.select().from(users).where(eq(users.id, user.id)))[0].passwordHash
    t.match(after, /^\$2b\$05\$/)
    await login(app, user)
  })

  t.test('the history records every attempt with the user agent parsed', async (t) => {
    const user = await createUser(app)
    const ua =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.142 Safari/537.36'
    await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': client.x_auth_token, 'user-agent': ua },
      payload: { email: user.email, password: 'bad' },
    })
    const tokens = await login(app, user)
    const page1 = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history?limit=1', headers: bearer(tokens) })
    t.equal(page1.statusCode, 200)
    const first = page1.json()
    t.equal(first.data.length, 1)
    t.match(first.data[0], { success: true, reason: null, ip: '127.0.0.1' })
    t.type(first.next_cursor, 'string')
    const page2 = await app.inject({
      method: 'GET',
      url: `/v1/users/me/auth-history?limit=1&cursor=${first.next_cursor}`,
      headers: bearer(tokens),
    })
    const second = page2.json()
    t.same(second.data[0], {
      id: second.data[0].id,
      date_time: second.data[0].date_time,
      success: false,
      reason: 'invalid_credentials',
      type: 'login',
      ip: '127.0.0.1',
      user_agent: ua,
      browser: { family: 'Chrome', version: '75.0.3770.142' },
      operating_system: { family: 'Mac OS', version: '10.14.6' },
      device: { brand: 'Apple', family: 'Other', model: 'Macintosh' },
      // Loopback: no place (test/auth/history-place.test.ts covers public addresses).
      country: null,
      city: null,
      map_links: null,
    })
    t.equal(second.next_cursor, null)
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/users/me/auth-history?cursor=bm9wZQ',
      headers: bearer(tokens),
    })
    t.equal(bad.statusCode, 400)
    t.same(bad.json().details, [{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
  })

  t.test('repeated failures on one account back off with Retry-After', async (t) => {
    const user = await createUser(app)
    for (let i = 0; i < 5; i++) {
      const res = await post('/v2/auth/login', { email: user.email, password: `bad-${i}` })
      t.equal(res.statusCode, 401)
    }
    const throttled = await post('/v2/auth/login', { email: user.email, password: user.password })
    t.equal(throttled.statusCode, 429)
    t.equal(throttled.json().error, 'rate_limited')
    t.ok(Number(throttled.headers['retry-after']) >= 1)
  })
})

t.test('the session limit', async (t) => {
  t.test('the 31st login answers 429 too_many_sessions by default', async (t) => {
    const app = await buildTestApp(t, { env: { MAX_SESSIONS: '3' } })
    const user = await createUser(app)
    for (let i = 0; i < 3; i++) await login(app, user)
    const client = await createClient(app)
    const res = await clientPost(app, client.x_auth_token)('/v2/auth/login', {
      email: user.email,
      password: user.password,
    })
    t.equal(res.statusCode, 429)
    t.same(res.json(), {
      error: 'too_many_sessions',
      message: 'This account already has 3 active sessions; log out of one first.',
    })
  })

  t.test('30 is the default, and evict_oldest ends the least recently used session instead', async (t) => {
    const app = await buildTestApp(t, { env: { SESSION_LIMIT_POLICY: 'evict_oldest' } })
    t.equal(app.config.MAX_SESSIONS, 30)
    const user = await createUser(app)
    const sessions = []
    for (let i = 0; i < 30; i++) sessions.push(await login(app, user))
    const newest = await login(app, user)
    const oldest = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(sessions[0]) })
    t.equal(oldest.statusCode, 401)
    t.equal(oldest.json().error, 'session_revoked')
    const still = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(sessions[1]) })
    t.equal(still.statusCode, 200)
    t.equal(
      (await app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(newest) })).statusCode,
      200,
    )
  })
})

t.test('per-IP rate limit on login, shared through the database', async (t) => {
  const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  let last = await post('/v2/auth/login', { email: 'x@y.io', password: 'p' })
  // Fixed one-minute windows: 61 attempts see at least 31 in one window even across a boundary.
  for (let i = 1; i < 61 && last.statusCode !== 429; i++) {
    last = await post('/v2/auth/login', { email: `x${i}@y.io`, password: 'p' })
  }
  t.equal(last.statusCode, 429)
  t.equal(last.json().error, 'rate_limited')
  t.match(last.json().message, /Too many requests/)
  t.ok(Number(last.headers['retry-after']) >= 1)
})
