import type { InjectOptions } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { PASSWORD, createClient, createUser, login, uniqueEmail } from '../helpers/fixtures.ts'

// The examples of issue 14, each answered as the contract says: a 400 naming the field, never a 500.
t.test('text PostgreSQL cannot store and dates outside their window are refused by validation', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const user = await createUser(app)
  const tokens = await login(app, user)
  const auth = { authorization: `Bearer ${tokens.access}` }
  const adminAuth = { authorization: `Bearer ${(await login(app, await createUser(app, { role: 'admin' }))).access}` }
  const clientHeaders = { 'x-auth-token': client.x_auth_token }
  const registerBody = (over: Record<string, unknown>) => ({
    email: uniqueEmail('hostile'),
    password: PASSWORD,
    first_name: 'Sponge',
    last_name: 'Bob',
    toc_accepted_at: '2024-07-01T12:34:56Z',
    privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
    ...over,
  })
  const refused = async (what: string, req: InjectOptions, field: string, problem?: RegExp) => {
    const res = await app.inject(req)
    t.equal(res.statusCode, 400, `${what}: 400`)
    const body = res.json()
    t.equal(body.error, 'validation_failed', `${what}: validation_failed`)
    const detail = (body.details ?? []).find((d: { field: string }) => d.field === field)
    t.ok(detail, `${what}: names ${field} (got ${JSON.stringify(body.details)})`)
    if (problem && detail) t.match(detail.problem, problem, `${what}: says why`)
  }

  const NUL = /U\+0000/
  await refused(
    'NUL in the login e-mail',
    { method: 'POST', url: '/v2/auth/login', headers: clientHeaders, payload: { email: 'a\u0000@b.c', password: 'x' } },
    'email',
    NUL,
  )
  await refused(
    'NUL in a password at login',
    {
      method: 'POST',
      url: '/v2/auth/login',
      headers: clientHeaders,
      payload: { email: user.email, password: 'a\u0000' },
    },
    'password',
    NUL,
  )
  await refused(
    'lone surrogate in a register name',
    {
      method: 'POST',
      url: '/v1/auth/register',
      headers: clientHeaders,
      payload: registerBody({ first_name: 'x\uD800' }),
    },
    'first_name',
    NUL,
  )
  await refused(
    'NUL in a query parameter',
    { method: 'GET', url: '/v1/admin/users?email=%00', headers: adminAuth },
    'query.email',
  )
  await refused(
    'lone low surrogate in a check-in note',
    { method: 'POST', url: '/v1/checkins', headers: auth, payload: { mood: 3, note: 'ok \uDC00' } },
    'note',
    NUL,
  )
  await refused(
    'NUL in a settings key',
    { method: 'PUT', url: '/v1/users/me/settings', headers: auth, payload: { settings: { 'a\u0000b': 'x' } } },
    'settings.a\uFFFDb',
    NUL,
  )

  const LEAP = '2016-12-31T23:59:60Z'
  await refused(
    'leap second at register',
    {
      method: 'POST',
      url: '/v1/auth/register',
      headers: clientHeaders,
      payload: registerBody({ toc_accepted_at: LEAP }),
    },
    'toc_accepted_at',
    /leap second/,
  )
  await refused(
    'leap second on a check-in',
    { method: 'POST', url: '/v1/checkins', headers: auth, payload: { mood: 3, timestamp: LEAP } },
    'timestamp',
    /leap second/,
  )
  await refused(
    'leap second in a measurement range',
    { method: 'GET', url: `/v1/measurements?type=heart_rate&from=${LEAP}`, headers: auth },
    'query.from',
  )
  await refused(
    'leap second in an aggregate',
    {
      method: 'GET',
      url: `/v1/measurements/aggregate?type=heart_rate&from=2016-12-31T00:00:00Z&to=${LEAP}`,
      headers: auth,
    },
    'query.to',
  )
  await refused(
    'leap second in a measurement delete',
    { method: 'DELETE', url: `/v1/measurements?from=2016-12-31T00:00:00Z&to=${LEAP}`, headers: auth },
    'query.to',
  )
  await refused(
    'year 0000 in a measurement range',
    { method: 'GET', url: '/v1/measurements?type=heart_rate&from=0000-01-01T00:00:00Z', headers: auth },
    'query.from',
    /between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z/,
  )
  await refused(
    'year 9999 in a measurement range',
    { method: 'GET', url: '/v1/measurements?type=heart_rate&to=9999-12-31T23:59:59Z', headers: auth },
    'query.to',
  )
  await refused(
    'year 0000 on day feedback',
    { method: 'PUT', url: '/v1/day-feedback/0000-01-01', headers: auth, payload: { mood: 3 } },
    'params.date',
    /between 1900-01-01 and 2199-12-31/,
  )
  await refused(
    'year 9999 on day feedback',
    { method: 'GET', url: '/v1/day-feedback?from=9999-01-01', headers: auth },
    'query.from',
  )
  await refused(
    'a check-in in the year 99 is not reinterpreted as 1999',
    { method: 'POST', url: '/v1/checkins', headers: auth, payload: { mood: 3, timestamp: '0099-06-15T10:00:00Z' } },
    'timestamp',
    /between 1900-01-01T00:00:00Z and 5 min from now/,
  )
  await refused(
    'a birth date before 1900',
    { method: 'PATCH', url: '/v1/users/me', headers: auth, payload: { date_of_birth: '1899-12-31' } },
    'date_of_birth',
    /between 1900-01-01 and today/,
  )
  await refused(
    'a birth date in the future',
    { method: 'PATCH', url: '/v1/users/me', headers: auth, payload: { date_of_birth: '2999-01-01' } },
    'date_of_birth',
  )
  await refused(
    'a leap second in an admin telemetry query',
    {
      method: 'GET',
      url: `/v1/admin/telemetry/logs?from=${LEAP}`,
      headers: { authorization: `Bearer ${(await login(app, await createUser(app, { role: 'admin' }))).access}` },
    },
    'query.from',
  )

  // Edge forms that are real instants stay accepted: far offsets and nine-digit fractions.
  for (const timestamp of [
    '2024-07-01T12:00:00.123456789Z',
    '2024-07-01T23:00:00+14:00',
    '2024-07-01T00:00:00-12:00',
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/checkins',
      headers: auth,
      payload: { mood: 3, timestamp },
    })
    t.equal(res.statusCode, 201, `${timestamp} accepted`)
  }
  const ok = await app.inject({
    method: 'PATCH',
    url: '/v1/users/me',
    headers: auth,
    payload: { date_of_birth: '1950-02-03' },
  })
  t.equal(ok.statusCode, 200, 'a real birth date is accepted')
})

t.test('hand-made cursors are refused as cursors, never reach the database', async (t) => {
  const app = await buildTestApp(t)
  const user = await createUser(app)
  const tokens = await login(app, user)
  const admin = await login(app, await createUser(app, { role: 'admin' }))
  const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const cases: Array<[string, string, string]> = [
    ['/v1/checkins', cursor(['+275760-09-13T00:00:00.000Z', '00000000-0000-4000-8000-000000000000']), tokens.access],
    ['/v1/checkins', cursor(['0000-01-01T00:00:00.000Z', '00000000-0000-4000-8000-000000000000']), tokens.access],
    ['/v1/checkins', cursor(['2024-01-01T00:00:00.000Z', 'not-a-uuid']), tokens.access],
    ['/v1/measurements?type=heart_rate', cursor(['0000-01-01T00:00:00.000Z', 'dev']), tokens.access],
    ['/v1/measurements?type=heart_rate', cursor(['2024-01-01T00:00:00.000Z', 'dev\u0000']), tokens.access],
    ['/v1/day-feedback', cursor(['0000-01-01']), tokens.access],
    ['/v1/day-feedback', cursor(['2024-02-30']), tokens.access],
    ['/v1/admin/telemetry/spans/slowest', cursor([5, 'not-a-uuid']), admin.access],
    [
      '/v1/admin/telemetry/spans/slowest',
      'WzFlNDAwLCIwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDAiXQ',
      admin.access,
    ],
    [
      '/v1/admin/telemetry/metrics/series?name=x&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z',
      cursor(['9999-12-31T23:59:59.000Z']),
      admin.access,
    ],
  ]
  for (const [path, c, access] of cases) {
    const res = await app.inject({
      method: 'GET',
      url: `${path}${path.includes('?') ? '&' : '?'}cursor=${c}`,
      headers: { authorization: `Bearer ${access}` },
    })
    t.equal(res.statusCode, 400, `${path} ${Buffer.from(c, 'base64url').toString()}: 400`)
    t.match(res.json(), { error: 'validation_failed', details: [{ field: 'query.cursor' }] })
  }
})

t.test('answers carrying tokens or personal data are never cached', async (t) => {
  const app = await buildTestApp(t)
  const client = await createClient(app)
  const user = await createUser(app)
  const loginRes = await app.inject({
    method: 'POST',
    url: '/v2/auth/login',
    headers: { 'x-auth-token': client.x_auth_token },
    payload: { email: user.email, password: PASSWORD },
  })
  t.equal(loginRes.headers['cache-control'], 'no-store', 'login')
  const tokens = loginRes.json()
  const refresh = await app.inject({
    method: 'POST',
    url: '/v1/auth/refresh',
    headers: { 'x-auth-token': client.x_auth_token, authorization: `Bearer ${tokens.access}` },
    payload: { refresh: tokens.refresh },
  })
  t.equal(refresh.headers['cache-control'], 'no-store', 'refresh')
  const auth = { authorization: `Bearer ${refresh.json().access}` }
  for (const url of ['/v1/users/me', '/v1/users/me/export', '/v1/checkins', '/v1/measurements/types', '/v1/nope']) {
    const res = await app.inject({ method: 'GET', url, headers: auth })
    t.equal(res.headers['cache-control'], 'no-store', `${url} (${res.statusCode})`)
  }
  const unauthenticated = await app.inject({ method: 'GET', url: '/v1/users/me' })
  t.equal(unauthenticated.headers['cache-control'], 'no-store', 'a 401 too')
})
