import { eq } from 'drizzle-orm'
import t from 'tap'
import { sessions } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createClient, createUser, login as loginAs } from '../helpers/fixtures.ts'
import { clientPost, decodeJwt } from '../helpers/http.ts'

t.test('refresh, logout and token checks', async (t) => {
  // No reuse window here: every second use of a refresh token is reuse.
  const app = await buildTestApp(t, { env: { REFRESH_REUSE_WINDOW_S: '0' } })
  const client = await createClient(app)
  const login = (user: { email: string; password: string }) => loginAs(app, user, client.x_auth_token)
  const post = clientPost(app, client.x_auth_token)
  const refresh = (token: string) => post('/v1/auth/refresh', { refresh: token })
  const probe = (tokens: { access: string }) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })

  t.test('refresh rotates both tokens within the same session', async (t) => {
    const user = await createUser(app)
    const first = await login(user)
    const res = await refresh(first.refresh)
    t.equal(res.statusCode, 200)
    const second = res.json()
    t.same(Object.keys(second).sort(), ['access', 'expiresIn', 'refresh'])
    t.not(second.refresh, first.refresh)
    t.not(second.access, first.access)
    t.equal(decodeJwt(second.access).sid, decodeJwt(first.access).sid)
    t.equal((await probe(second)).statusCode, 200)
    const third = await refresh(second.refresh)
    t.equal(third.statusCode, 200)
  })

  t.test('a refresh token used twice revokes its whole session: token_reused', async (t) => {
    const user = await createUser(app)
    const first = await login(user)
    const second = (await refresh(first.refresh)).json()
    const reuse = await refresh(first.refresh)
    t.equal(reuse.statusCode, 401)
    t.same(reuse.json(), {
      error: 'token_reused',
      message: 'This refresh token was already used; the session is revoked for safety.',
    })
    const afterwards = await refresh(second.refresh)
    t.equal(afterwards.statusCode, 401)
    t.equal(afterwards.json().error, 'session_revoked')
    const access = await probe(second)
    t.equal(access.statusCode, 401, 'the access token of the revoked session stops at once')
    t.equal(access.json().error, 'session_revoked')
  })

  t.test('tokens of the wrong kind, forged or expired are refused', async (t) => {
    const user = await createUser(app)
    const tokens = await login(user)
    const asRefresh = await refresh(tokens.access)
    t.equal(asRefresh.statusCode, 401)
    t.equal(asRefresh.json().error, 'invalid_token')
    const asAccess = await app.inject({
      method: 'GET',
      url: '/v1/users/me/auth-history',
      headers: { authorization: `Bearer ${tokens.refresh}` },
    })
    t.equal(asAccess.statusCode, 401)
    t.equal(asAccess.json().error, 'invalid_token')

    const claims = decodeJwt(tokens.access)
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
    const unsigned = await app.inject({
      method: 'GET',
      url: '/v1/users/me/auth-history',
      headers: { authorization: `Bearer ${none}` },
    })
    t.equal(unsigned.statusCode, 401)
    t.equal(unsigned.json().error, 'invalid_token')
    const tampered = tokens.access.replace(/\.[^.]+$/, '.AAAA')
    t.equal(
      (
        await app.inject({
          method: 'GET',
          url: '/v1/users/me/auth-history',
          headers: { authorization: `Bearer ${tampered}` },
        })
      ).statusCode,
      401,
    )

    const past = Math.floor(Date.now() / 1000) - 10
    const expiredRefresh = app.jwt.sign({
      typ: 'refresh',
      sub: user.id,
      sid: claims.sid,
      jti: 'x',
      iat: past - 100,
      exp: past,
    } as never)
    const expired = await refresh(expiredRefresh)
    t.equal(expired.statusCode, 401)
    t.equal(expired.json().error, 'token_expired')
    const expiredAccess = app.jwt.sign({
      sub: user.id,
      sid: claims.sid,
      role: 'user',
      iat: past - 100,
      nbf: past - 100,
      exp: past,
    } as never)
    const exp = await app.inject({
      method: 'GET',
      url: '/v1/users/me/auth-history',
      headers: { authorization: `Bearer ${expiredAccess}` },
    })
    t.equal(exp.json().error, 'token_expired')
    const noHeader = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history' })
    t.same(noHeader.json(), { error: 'unauthorized', message: 'A Bearer access token is required.' })
  })

  t.test('refresh needs the client token too', async (t) => {
    const user = await createUser(app)
    const tokens = await login(user)
    const res = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh: tokens.refresh } })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'invalid_client')
  })

  t.test("a session is found by the token's user and session id together (Citus: sub leads the key)", async (t) => {
    const a = await createUser(app)
    const b = await createUser(app)
    const tokensA = await login(a)
    const claims = decodeJwt(tokensA.access)
    const now = Math.floor(Date.now() / 1000)
    // Signed with the server's key, so only the pairing is wrong: B's id with A's session.
    const access = app.jwt.sign({
      sub: b.id,
      sid: claims.sid,
      role: 'user',
      iat: now,
      nbf: now,
      exp: now + 60,
    } as never)
    const res = await app.inject({
      method: 'GET',
      url: '/v1/users/me/auth-history',
      headers: { authorization: `Bearer ${access}` },
    })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'session_revoked')
    const claimsR = decodeJwt(tokensA.refresh)
    const forged = app.jwt.sign({
      typ: 'refresh',
      sub: b.id,
      sid: claimsR.sid,
      jti: claimsR.jti,
      iat: now,
      exp: now + 60,
    } as never)
    const r = await refresh(forged)
    t.equal(r.statusCode, 401)
    t.equal(r.json().error, 'invalid_token')
    // A's session is untouched: neither rotated nor revoked by the mismatched tokens.
    t.equal((await probe(tokensA)).statusCode, 200)
    t.equal((await refresh(tokensA.refresh)).statusCode, 200)
  })

  t.test('logout ends the current session only', async (t) => {
    const user = await createUser(app)
    const a = await login(user)
    const b = await login(user)
    const res = await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(a) })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success' })
    t.equal((await probe(a)).statusCode, 401)
    t.equal((await refresh(a.refresh)).json().error, 'session_revoked')
    t.equal((await probe(b)).statusCode, 200)
  })
})

t.test('within the reuse window a refresh token presented again gets the same pair', async (t) => {
  const app = await buildTestApp(t)
  t.equal(app.config.REFRESH_REUSE_WINDOW_S, 10, 'the default window is 10 s')
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const user = await createUser(app)
  const first = await loginAs(app, user, client.x_auth_token)

  // A phone waking with two requests in flight: both refreshes with one token, at the same moment.
  const [a, b] = await Promise.all([
    post('/v1/auth/refresh', { refresh: first.refresh }),
    post('/v1/auth/refresh', { refresh: first.refresh }),
  ])
  t.equal(a.statusCode, 200, a.body)
  t.equal(b.statusCode, 200, b.body)
  t.same(a.json(), b.json(), 'both get the very same new pair')
  t.not(a.json().refresh, first.refresh)
  const retry = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.same(retry.json(), a.json(), 'a retry after a lost reply gets it too')
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(a.json()) })
  t.equal(me.statusCode, 200, 'the pair works')

  // The new pair is used: from now on the old token is reuse, even inside the window.
  const next = await post('/v1/auth/refresh', { refresh: a.json().refresh })
  t.equal(next.statusCode, 200)
  const late = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.equal(late.statusCode, 401)
  t.equal(late.json().error, 'token_reused', 'a token two rotations old is reuse')
  const after = await post('/v1/auth/refresh', { refresh: next.json().refresh })
  t.equal(after.json().error, 'session_revoked', 'and the session is revoked')
})

t.test('outside the reuse window a second use revokes the session', async (t) => {
  const app = await buildTestApp(t, { env: { REFRESH_REUSE_WINDOW_S: '1' } })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const user = await createUser(app)
  const first = await loginAs(app, user, client.x_auth_token)
  const second = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.equal(second.statusCode, 200)
  // The window is counted from the rotation, kept in the database: move it back instead of sleeping.
  await app.db
    .update(sessions)
    .set({ rotatedAt: new Date(Date.now() - 1500) })
    .where(eq(sessions.id, String(decodeJwt(first.access).sid)))
  const reuse = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.equal(reuse.statusCode, 401)
  t.equal(reuse.json().error, 'token_reused')
  t.equal((await post('/v1/auth/refresh', { refresh: second.json().refresh })).json().error, 'session_revoked')
})

t.test('parallel refreshes with one token on two app instances (one database) get one pair', async (t) => {
  const one = await buildTestApp(t)
  const two = await buildTestApp(t, { database: one.database })
  const client = await createClient(one)
  const user = await createUser(one)
  const first = await loginAs(one, user, client.x_auth_token)
  const results = await Promise.all(
    [one, two, one, two].map((app) =>
      clientPost(app, client.x_auth_token)('/v1/auth/refresh', { refresh: first.refresh }),
    ),
  )
  t.same(
    results.map((r) => r.statusCode),
    [200, 200, 200, 200],
  )
  t.equal(new Set(results.map((r) => r.body)).size, 1, 'every answer is the same pair')
})

t.test('a session belongs to the client app that opened it', async (t) => {
  const app = await buildTestApp(t)
  const ios = await createClient(app, 'iOS')
  const android = await createClient(app, 'Android')
  const user = await createUser(app)
  const tokens = await loginAs(app, user, ios.x_auth_token)
  const elsewhere = await clientPost(app, android.x_auth_token)('/v1/auth/refresh', { refresh: tokens.refresh })
  t.equal(elsewhere.statusCode, 401)
  t.same(elsewhere.json(), {
    error: 'client_mismatch',
    message: 'This refresh token belongs to another client app; log in through this app.',
  })
  const home = await clientPost(app, ios.x_auth_token)('/v1/auth/refresh', { refresh: tokens.refresh })
  t.equal(home.statusCode, 200, 'the refused attempt neither rotated nor revoked the session')
})

t.test('a revocation made by another process is honoured within SESSION_CACHE_TTL_MS', async (t) => {
  const one = await buildTestApp(t, { env: { SESSION_CACHE_TTL_MS: '300' } })
  const two = await buildTestApp(t, { env: { SESSION_CACHE_TTL_MS: '300' }, database: one.database })
  const user = await createUser(one)
  const tokens = await loginAs(one, user)
  const probe = (app: typeof one) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })
  t.equal((await probe(two)).statusCode, 200, 'process two has the session cached as live')
  await one.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(tokens) })
  t.equal((await probe(one)).statusCode, 401, 'the revoking process refuses at once')
  await new Promise((r) => setTimeout(r, 350))
  t.equal((await probe(two)).statusCode, 401, 'the other process refuses once its cache entry is older than the TTL')
})
