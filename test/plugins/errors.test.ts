import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { createClient } from '../helpers/fixtures.ts'

t.test('bad input gets a clear 4xx in the error shape, never a 500', async (t) => {
  const app = await buildTestApp(t, { env: { BODY_LIMIT: '2048' } })
  const { x_auth_token: token } = await createClient(app)
  const post = (payload: string, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': token, 'content-type': 'application/json', ...headers },
      payload,
    })

  const malformed = await post('{"email": ')
  t.equal(malformed.statusCode, 400)
  t.same(malformed.json(), { error: 'invalid_json', message: 'The request body is not valid JSON.' })

  const wrongType = await post('email=a', { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(wrongType.statusCode, 415)
  t.equal(wrongType.json().error, 'unsupported_media_type')

  const huge = await post(JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(4000) }))
  t.equal(huge.statusCode, 413)
  t.same(huge.json(), { error: 'payload_too_large', message: 'The request body is too large.' })

  const unknownField = await post(JSON.stringify({ email: 'a@b.co', password: 'x', admin: true }))
  t.equal(unknownField.statusCode, 400)
  t.same(unknownField.json(), {
    error: 'validation_failed',
    message: 'The request is not valid.',
    details: [{ field: 'admin', problem: 'is not an allowed field' }],
  })

  const missing = await post(JSON.stringify({ password: 'x' }))
  t.equal(missing.statusCode, 400)
  t.same(missing.json().details, [{ field: 'email', problem: 'is required' }])

  const wrongTypes = await post(JSON.stringify({ email: 42, password: ['x'] }))
  t.equal(wrongTypes.statusCode, 400)
  t.match(wrongTypes.json().details, [
    { field: 'email', problem: 'must be string' },
    { field: 'password', problem: 'must be string' },
  ])
})

t.test('unknown routes and methods answer 404 in the same shape', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/v1/nothing-here?x=1' })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: 'not_found', message: 'No route GET /v1/nothing-here.' })
  const wrongMethod = await app.inject({ method: 'DELETE', url: '/healthz' })
  t.equal(wrongMethod.statusCode, 404)
  t.equal(wrongMethod.json().error, 'not_found')
})

t.test('a caller-provided request id is echoed only when harmless', async (t) => {
  const app = await buildTestApp(t)
  const ok = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } })
  t.equal(ok.headers['x-request-id'], 'abc-123')
  const evil = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'a\nb {"level":60}' } })
  t.not(evil.headers['x-request-id'], 'a\nb {"level":60}')
  t.match(evil.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

t.test('JSON is bounded in depth and safe from prototype poisoning', async (t) => {
  const app = await buildTestApp(t)
  const { x_auth_token: token } = await createClient(app)
  const post = (payload: string) =>
    app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      payload,
    })
  const deep = await post(`{"email":${'['.repeat(5000)}${']'.repeat(5000)},"password":"x"}`)
  t.equal(deep.statusCode, 400)
  t.same(deep.json(), { error: 'invalid_json', message: 'The JSON body is nested too deeply.' })
  const deepInString = await post(JSON.stringify({ email: '['.repeat(500), password: 'x' }))
  t.equal(deepInString.statusCode, 400)
  t.equal(deepInString.json().error, 'validation_failed', 'brackets inside strings do not count as depth')
  const proto = await post('{"email":"a@b.co","password":"x","__proto__":{"role":"admin"}}')
  t.equal(proto.statusCode, 400)
  t.equal(proto.json().error, 'invalid_json')
  const empty = await post('')
  t.equal(empty.statusCode, 400)
  t.equal(empty.json().error, 'invalid_json')
})

t.test('security headers, and CORS only for configured origins', async (t) => {
  const app = await buildTestApp(t, { env: { CORS_ORIGINS: 'https://app.nowatch.example' } })
  const res = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://app.nowatch.example' } })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['strict-transport-security'], undefined, 'HSTS never over plain http (csp.test.ts: over https)')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.equal(res.headers['access-control-allow-origin'], 'https://app.nowatch.example')
  const other = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined)
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/v2/auth/login',
    headers: { origin: 'https://app.nowatch.example', 'access-control-request-method': 'POST' },
  })
  t.equal(preflight.statusCode, 204)
  t.match(preflight.headers['access-control-allow-headers'], /x-auth-token/)
})

t.test('a saturated event loop answers 503 overloaded with Retry-After instead of queueing', async (t) => {
  const app = await buildTestApp(t, { env: { MAX_EVENT_LOOP_DELAY_MS: '100' } })
  const until = Date.now() + 1500
  while (Date.now() < until) {
    // Busy: nothing else runs, as under a CPU-bound flood.
  }
  await new Promise((r) => setTimeout(r, 50))
  const res = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 503)
  t.same(res.json(), { error: 'overloaded', message: 'The server is overloaded; try again shortly.' })
  t.equal(res.headers['retry-after'], '5')
})
