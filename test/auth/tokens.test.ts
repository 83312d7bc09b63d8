import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createClient, createUser, login } from '../helpers/fixtures.ts'
import { clientPost, decodeJwt } from '../helpers/http.ts'

t.test('refresh, logout and token checks', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const refresh = (token: string) => post('/v1/auth/refresh', { refresh: token })
  const probe = (tokens: { access: string }) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })

  t.test('refresh rotates both tokens within the same session', async (t) => {
    const user = await createUser(app)
    const first = await login(app, user)
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
    const first = await login(app, user)
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
    const tokens = await login(app, user)
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
    const tokens = await login(app, user)
    const res = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh: tokens.refresh } })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'invalid_client')
  })

  t.test('logout ends the current session only', async (t) => {
    const user = await createUser(app)
    const a = await login(app, user)
    const b = await login(app, user)
    const res = await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(a) })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success' })
    t.equal((await probe(a)).statusCode, 401)
    t.equal((await refresh(a.refresh)).json().error, 'session_revoked')
    t.equal((await probe(b)).statusCode, 200)
  })
})

t.test('a grace period lets a phone that lost the reply retry its refresh', async (t) => {
  const app = await buildTestApp(t, { env: { REFRESH_REUSE_GRACE_S: '30' } })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)
  const user = await createUser(app)
  const first = await login(app, user)
  const lost = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.equal(lost.statusCode, 200)
  const retry = await post('/v1/auth/refresh', { refresh: first.refresh })
  t.equal(retry.statusCode, 200, 'the same token again within the grace gets a fresh pair')
  t.equal(decodeJwt(retry.json().access).sid, decodeJwt(first.access).sid)
  const lostPair = await post('/v1/auth/refresh', { refresh: lost.json().refresh })
  t.equal(lostPair.statusCode, 401, 'the pair that was replaced is dead, and using it is reuse')
  t.equal(lostPair.json().error, 'token_reused')
})

t.test('a revocation made by another process is honoured within SESSION_CACHE_TTL_MS', async (t) => {
  const one = await buildTestApp(t, { env: { SESSION_CACHE_TTL_MS: '300' } })
  const two = await buildTestApp(t, { env: { SESSION_CACHE_TTL_MS: '300' }, database: one.database })
  const user = await createUser(one)
  const tokens = await login(one, user)
  const probe = (app: typeof one) =>
    app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(tokens) })
  t.equal((await probe(two)).statusCode, 200, 'process two has the session cached as live')
  await one.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(tokens) })
  t.equal((await probe(one)).statusCode, 401, 'the revoking process refuses at once')
  await new Promise((r) => setTimeout(r, 350))
  t.equal((await probe(two)).statusCode, 401, 'the other process refuses once its cache entry is older than the TTL')
})
