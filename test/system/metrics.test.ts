import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format'
import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { windowOf } from '../helpers/clock.ts'
import { bearer, createClient, createUser, userWithToken } from '../helpers/fixtures.ts'

const TOKEN = 'metrics-token-metrics-token-0123456789'

t.test('/metrics is off without METRICS_TOKEN', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: 'not_found', message: 'Metrics are off: set METRICS_TOKEN to serve them.' })
})

t.test('/metrics with METRICS_TOKEN: Prometheus text, by route pattern, nothing personal', async (t) => {
  const app = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN, RATE_LIMIT_ENABLED: 'true' } })
  for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
    const res = await app.inject({ url: '/metrics', headers: authorization ? { authorization } : {} })
    t.equal(res.statusCode, 401, `refused: ${authorization ?? 'no header'}`)
    t.equal(res.json().error, 'unauthorized')
  }
  const { tokens, user } = await userWithToken(app)
  const client = await createClient(app)

  // Traffic: a profile read, a 404 on an id route, samples twice, failed logins, a rate limit, mail queued.
  t.equal((await app.inject({ url: '/v1/users/me', headers: bearer(tokens) })).statusCode, 200)
  const missing = '0b7c7e3e-0000-4000-8000-000000000001'
  t.equal((await app.inject({ url: `/v1/checkins/${missing}`, headers: bearer(tokens) })).statusCode, 404)
  const batch = {
    device_id: 'watch-1',
    samples: [
      { type: 'heart_rate', timestamp: '2026-11-20T08:00:00Z', value: 62 },
      { type: 'heart_rate', timestamp: '2026-11-20T08:00:01Z', value: 64 },
      { type: 'steps', timestamp: '2026-11-20T08:00:00Z', value: 120 },
    ],
  }
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/measurements', headers: bearer(tokens), payload: batch })
    t.equal(res.statusCode, 200)
  }
  const other = await createUser(app)
  for (let i = 0; i < 2; i++) {
    const res = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': client.x_auth_token },
      payload: { email: other.email, password: 'Wrong-Password-1!' },
    })
    t.equal(res.statusCode, 401)
  }
  // Five an hour for one address, in a fixed hour: the 6th is limited when all fell in one hour, the 11th at the
  // latest (5 + 1 + 5) when a new one began on the way. The loop stops at the first 429 either way.
  const hour = windowOf(3600_000)
  const firstHour = hour(Date.now())
  const statuses: number[] = []
  while (statuses.length < 11 && statuses.at(-1) !== 429) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/forgot_password',
      headers: { 'x-auth-token': client.x_auth_token },
      payload: { email: user.email },
    })
    statuses.push(res.statusCode)
  }
  if (hour(Date.now()) === firstHour) t.same(statuses, [200, 200, 200, 200, 200, 429], 'the 6th is rate limited')
  else t.equal(statuses.at(-1), 429, `the last forgot_password is rate limited (${statuses.length}, a new hour)`)
  const queued = statuses.filter((s) => s === 200).length
  // The reset mails are queued after each answer (the same work for known and unknown addresses).
  await app.afterAnswer.idle()

  const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# TYPE http_request_duration_seconds histogram$/m)
  // parse-prometheus-text-format folds a histogram's buckets, sum and count only when it has no labels
  // (its port of client_python 0.0.19); read labelled histograms as their _bucket/_sum/_count series.
  const histograms = [...res.body.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1])
  const families = parsePrometheusTextFormat(
    res.body
      .split('\n')
      .filter((line) => !histograms.some((h) => line.startsWith(`# HELP ${h} `) || line.startsWith(`# TYPE ${h} `)))
      .join('\n'),
  )
  const family = (name: string) => families.find((f) => f.name === name) as PromFamily
  // A series may come back as several families of one name (a histogram's series alternate).
  const sample = (name: string, labels: Record<string, string>) =>
    families
      .filter((f) => f.name === name)
      .flatMap((f) => f.metrics)
      .find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))

  const profile = { route: '/v1/users/me', method: 'GET', status_code: '200' }
  t.equal(sample('http_request_duration_seconds_count', profile)?.value, '1', 'one profile read, under its route')
  t.ok(Number(sample('http_request_duration_seconds_sum', profile)?.value) > 0, 'with its latency')
  t.equal(sample('http_request_duration_seconds_bucket', { ...profile, le: '+Inf' })?.value, '1', 'in buckets')
  t.equal(
    sample('http_request_errors_total', { route: '/v1/checkins/:id', status_code: '404', error: 'not_found' })?.value,
    '1',
    'the 404 under the route pattern, with its error identifier',
  )
  t.equal(sample('measurement_samples_ingested_total', { result: 'accepted' })?.value, '3')
  t.equal(sample('measurement_samples_ingested_total', { result: 'duplicate' })?.value, '3')
  t.equal(sample('auth_login_failures_total', { error: 'invalid_credentials' })?.value, '2')
  t.equal(sample('rate_limit_hits_total', { route: '/v1/auth/forgot_password' })?.value, '1')
  t.equal(sample('job_queue_depth', { queue: 'mail' })?.value, String(queued), 'the unsent mails are the queue')
  t.ok(Number(sample('job_queue_oldest_age_seconds', { queue: 'mail' })?.value) >= 0)
  t.equal(sample('job_queue_depth', { queue: 'webhooks' })?.value, '0', 'no webhook waiting: none subscribed')
  t.equal(family('job_queue_scrape_errors').metrics[0].value, '0')
  const queries = Number(
    sample('db_query_duration_seconds_count', { driver: process.env.DATABASE_URL ? 'postgres' : 'pglite' })?.value,
  )
  t.ok(queries > 10, `database queries are timed (${queries})`)
  t.ok(family('db_pool_max_connections'), 'the pool size is there')
  t.ok(family('process_cpu_user_seconds_total'), 'and the process defaults')

  // No id, e-mail or raw URL in any label.
  const values = families.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {})))
  const leaks = values.filter((v) => /@|[0-9a-f]{8}-[0-9a-f]{4}-|\?/.test(v) || v.includes(missing))
  t.same(leaks, [], 'labels carry route patterns and identifiers only')
  t.notOk(res.body.includes(user.email) || res.body.includes(user.id), 'nothing personal anywhere')
})
