import autocannon from 'autocannon'
import t from 'tap'
import { startServer } from '../helpers/processes.ts'
import { loginOver, seededDatabase } from '../helpers/seed.ts'

// A bounded load run in CI: a few seconds of mixed authenticated traffic at modest concurrency
// against the real server on loopback. Zero errors and zero non-2xx answers. Not a speed figure.
t.test('mixed authenticated traffic: no errors, no non-2xx', async (t) => {
  const seeded = await seededDatabase(['load@example.com'])
  t.teardown(() => seeded.close())
  // Correctness under load, not capacity: the overload guard (503 by design) stays out of it, since a
  // busy CI machine running other test files would trip it.
  const server = await startServer({
    ...seeded.env,
    JOBS_ENABLED: 'false',
    RATE_LIMIT_ENABLED: 'false',
    MAX_EVENT_LOOP_DELAY_MS: '0',
  })
  t.teardown(() => server.stop())
  const { access } = await loginOver(server.url, seeded.clientToken, 'load@example.com')

  const auth = { authorization: `Bearer ${access}`, 'content-type': 'application/json' }
  let n = 0
  const base = Date.now() - 86400_000
  const result = await autocannon({
    url: server.url,
    connections: 8,
    duration: 4,
    headers: auth,
    requests: [
      { method: 'GET', path: '/v1/users/me' },
      {
        method: 'POST',
        path: '/v1/measurements',
        // A fresh batch each time: 60 samples a minute apart, going back an hour each time, never overlapping.
        setupRequest(req) {
          const start = base - n++ * 3600_000
          const samples = Array.from({ length: 60 }, (_, i) => ({
            type: 'heart_rate',
            timestamp: new Date(start + i * 60_000).toISOString(),
            value: 55 + (i % 30),
          }))
          return { ...req, body: JSON.stringify({ device_id: 'load-watch', samples }) }
        },
      },
      {
        method: 'GET',
        path: `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${new Date(base).toISOString()}&to=${new Date().toISOString()}`,
      },
      { method: 'GET', path: '/v1/statistics/daily?from=2026-01-01&to=2026-01-31' },
      { method: 'GET', path: '/v1/checkins?limit=10' },
      { method: 'GET', path: '/v1/users/me/sessions' },
    ],
  })
  t.ok(result.requests.total > 0, `${result.requests.total} requests in ${result.duration} s`)
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.timeouts, 0, 'no timeouts')
  t.equal(result.non2xx, 0, 'no non-2xx answers')
  t.comment(
    `load: ${result.requests.total} requests, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ${result.requests.average} req/s`,
  )
})
