import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { routeKey } from '../../plugins/limits.ts'
import { buildTestApp } from '../helpers/app.ts'
import { windowOf } from '../helpers/clock.ts'
import { bearer, createClient, createUser } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'

t.test('route keys name the route, or the group routes share', async (t) => {
  t.equal(routeKey({ routeInfo: { method: 'POST', url: '/v1/auth/refresh' } }), 'POST /v1/auth/refresh')
  t.equal(routeKey({ groupId: 'login', routeInfo: { method: 'POST', url: '/v2/auth/login' } }), 'group login')
  t.equal(routeKey({ routeInfo: { method: ['GET', 'HEAD'], url: '/x' } }), 'GET,HEAD /x')
})

t.test('per-IP counters are kept per route', async (t) => {
  const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const client = await createClient(app)
  const post = clientPost(app, client.x_auth_token)

  t.test('31 refreshes do not make the next login a 429', async (t) => {
    // Both routes have one-minute windows; they used to count into one counter per IP (limit 30).
    for (let i = 0; i < 31; i++) {
      const res = await post('/v1/auth/refresh', { refresh: `not-a-token-${i}` })
      t.equal(res.statusCode, 401, 'a refresh is answered, not limited')
    }
    const res = await post('/v2/auth/login', { email: 'nobody@example.com', password: 'Wrong-1!' })
    t.equal(res.statusCode, 401, 'login still has its whole budget')
    t.equal(res.json().error, 'invalid_credentials')
  })

  t.test('the three logins share one budget; other routes with the same window have their own', async (t) => {
    // The window is a fixed minute: if its boundary falls inside this loop the count starts again, so a shared
    // budget is limited by attempt 61 at the latest (29 + 1 + 30 + 1); three budgets of 30 would take ~90.
    let limitedAt = 0
    for (let i = 1; i <= 61 && !limitedAt; i++) {
      const url = ['/v2/auth/login', '/v1/auth/login', '/v2/auth/login/admin'][i % 3]
      const res = await post(url, { email: `n${i}@example.com`, password: 'Wrong-1!' })
      if (res.statusCode === 429) limitedAt = i
    }
    // 1 login above + 29 here = 30 in the window, or up to 30 more when a new minute began on the way.
    t.ok(limitedAt > 0 && limitedAt <= 61, `limited at attempt ${limitedAt} across the three login routes`)
  })

  t.test('forgot-password traffic does not use up the register or export limits (same 1 h window)', async (t) => {
    // A fixed hour: if it begins again during the loop the count starts over, so the 21st request is limited
    // when all fell in one hour, and the 41st at the latest (20 + 1 + 20) when a new one began on the way.
    const hour = windowOf(3600_000)
    const firstHour = hour(Date.now())
    let limitedAt = 0
    for (let i = 1; i <= 41 && !limitedAt; i++) {
      const res = await post('/v1/auth/forgot_password', { email: `f${i}@example.com` })
      if (res.statusCode === 429) limitedAt = i
    }
    if (hour(Date.now()) === firstHour) t.equal(limitedAt, 21, 'forgot-password has its 20 an hour')
    else t.ok(limitedAt > 0 && limitedAt <= 41, `limited at attempt ${limitedAt}, a new hour having begun`)
    const register = await post('/v1/auth/register', {
      email: 'fresh@example.com',
      password: 'Kelp-Forest-9!',
      first_name: 'F',
      last_name: 'R',
      toc_accepted_at: '2024-07-01T12:34:56Z',
      privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
    })
    t.equal(register.statusCode, 200)
    // Logged in from another address: this IP's login budget went to the test above.
    const user = await createUser(app)
    const tokens = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      remoteAddress: '10.9.9.9',
      headers: { 'x-auth-token': client.x_auth_token },
      payload: { email: user.email, password: user.password },
    })
    t.equal(tokens.statusCode, 200)
    const exported = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: bearer(tokens.json()) })
    t.equal(exported.statusCode, 200)
  })

  t.test('the counters in the table say route and subject', async (t) => {
    const rows = await queryRows<{ key: string }>(app.db, sql`select distinct key from rate_counters order by key`)
    const keys = rows.map((r) => r.key)
    t.ok(keys.includes('POST /v1/auth/refresh:ip:127.0.0.1'), keys.join(' | '))
    t.ok(keys.includes('group login:ip:127.0.0.1'))
    t.ok(keys.includes('POST /v1/auth/forgot_password:ip:127.0.0.1'))
    t.ok(keys.includes('GET /v1/users/me/export:ip:127.0.0.1'))
    t.ok(keys.includes('group login:ip:10.9.9.9'))
  })
})
