import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { hex, jsonSpan, logsBody, metricsBody, ns, tracesBody } from '../helpers/telemetry.ts'

const base = Date.UTC(2026, 2, 1, 10, 0, 0)
const at = (minutes: number) => new Date(base + minutes * 60_000)

/** A span starting `minutes` after base, lasting `ms`. */
function span(minutes: number, ms: number, over: Record<string, unknown> = {}) {
  const start = BigInt(at(minutes).getTime()) * 1_000_000n
  return jsonSpan({
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + BigInt(ms) * 1_000_000n),
    ...over,
  })
}

t.test('admin telemetry queries', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const admin = await userWithToken(app, { role: 'admin' })
  const get = (url: string, query: Record<string, string> = {}, headers = admin.headers) =>
    app.inject({ url, query, headers })

  const traceId = hex(16)
  const ios = [0, 1, 2, 3, 4].map((m) => span(m, (m + 1) * 10, { traceId, name: `step-${m}` }))
  const android = [span(2, 1000, { name: 'slow-sync' }), span(30, 5, { name: 'fast' })]
  for (const [spans, service] of [
    [ios, 'nowatch-ios'],
    [android, 'nowatch-android'],
  ] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/traces',
      headers: alice.headers,
      payload: tracesBody([...spans], service),
    })
    t.same(res.json(), {})
  }
  const logs = logsBody(
    [
      [0, 9, 'sync started'],
      [1, 13, 'Battery LOW: 5%'],
      [2, 17, 'upload failed: 100% of retries used'],
      [3, 21, 'crash'],
    ].map(([m, sev, body]) => ({
      timeUnixNano: ns(at(m as number)),
      severityNumber: sev,
      body: { stringValue: body },
    })),
    'nowatch-ios',
  )
  await app.inject({ method: 'POST', url: '/v1/telemetry/logs', headers: alice.headers, payload: logs })

  t.test('non-admins are refused on every query', async (t) => {
    const urls = [
      `/v1/admin/telemetry/traces/${traceId}`,
      '/v1/admin/telemetry/spans',
      '/v1/admin/telemetry/spans/slowest',
      '/v1/admin/telemetry/logs',
      '/v1/admin/telemetry/metrics/series?name=x&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
    ]
    for (const url of urls) {
      const user = await app.inject({ url, headers: alice.headers })
      t.equal(user.statusCode, 403, url)
      t.same(user.json(), { error: 'forbidden', message: 'This route is for administrators.' })
      const anonymous = await app.inject({ url })
      t.equal(anonymous.statusCode, 401, url)
    }
  })

  t.test('a trace, in start order, page by page without gaps or repeats', async (t) => {
    const names: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const res = await get(`/v1/admin/telemetry/traces/${traceId.toUpperCase()}`, {
        limit: '2',
        ...(cursor && { cursor }),
      })
      t.equal(res.statusCode, 200, res.body)
      const body = res.json()
      names.push(...body.data.map((s: { name: string }) => s.name))
      cursor = body.next_cursor ?? undefined
      pages++
    } while (cursor)
    t.same(names, ['step-0', 'step-1', 'step-2', 'step-3', 'step-4'])
    t.equal(pages, 3)
  })

  t.test('spans by service and time range, newest first', async (t) => {
    const res = await get('/v1/admin/telemetry/spans', {
      service: 'nowatch-ios',
      from: at(1).toISOString(),
      to: at(4).toISOString(),
    })
    t.same(
      res.json().data.map((s: { name: string }) => s.name),
      ['step-3', 'step-2', 'step-1'],
    )
    const byUser = await get('/v1/admin/telemetry/spans', { user_id: alice.user.id, limit: '100' })
    t.equal(byUser.json().data.length, 7)
  })

  t.test('slowest spans first, paginated', async (t) => {
    const first = await get('/v1/admin/telemetry/spans/slowest', { limit: '2' })
    t.same(
      first.json().data.map((s: { name: string; duration_ms: number }) => [s.name, s.duration_ms]),
      [
        ['slow-sync', 1000],
        ['step-4', 50],
      ],
    )
    const second = await get('/v1/admin/telemetry/spans/slowest', { limit: '2', cursor: first.json().next_cursor })
    t.same(
      second.json().data.map((s: { name: string }) => s.name),
      ['step-3', 'step-2'],
    )
    const ios = await get('/v1/admin/telemetry/spans/slowest', { service: 'nowatch-ios', limit: '1' })
    t.equal(ios.json().data[0].name, 'step-4')
  })

  t.test('logs by severity, text, service and time', async (t) => {
    const bodies = async (query: Record<string, string>) =>
      (await get('/v1/admin/telemetry/logs', query)).json().data.map((l: { body: string }) => l.body)
    t.same(await bodies({ min_severity: '17' }), ['crash', 'upload failed: 100% of retries used'])
    t.same(await bodies({ q: 'battery low' }), ['Battery LOW: 5%'])
    // LIKE wildcards in `q` are literal characters.
    t.same(await bodies({ q: '100%' }), ['upload failed: 100% of retries used'])
    t.same(await bodies({ q: '_' }), [])
    t.same(await bodies({ service: 'nowatch-android' }), [])
    t.same(await bodies({ from: at(1).toISOString(), to: at(2).toISOString() }), ['Battery LOW: 5%'])
    const paged = await get('/v1/admin/telemetry/logs', { limit: '3' })
    const rest = await get('/v1/admin/telemetry/logs', { limit: '3', cursor: paged.json().next_cursor })
    t.same(rest.json(), { data: [rest.json().data[0]], next_cursor: null })
    t.equal(rest.json().data[0].body, 'sync started')
  })

  t.test('metric series in buckets, paginated', async (t) => {
    const points = [0, 1, 2, 61, 62, 125].map((m, i) => ({ timeUnixNano: ns(at(m)), asDouble: i + 1 }))
    await app.inject({
      method: 'POST',
      url: '/v1/telemetry/metrics',
      headers: alice.headers,
      payload: metricsBody([{ name: 'hr.sync.lag', unit: 's', gauge: { dataPoints: points } }]),
    })
    const query = {
      name: 'hr.sync.lag',
      from: at(0).toISOString(),
      to: at(24 * 60).toISOString(),
      bucket: '1h',
      limit: '2',
    }
    const first = await get('/v1/admin/telemetry/metrics/series', query)
    t.same(first.json().data, [
      { bucket_start: '2026-03-01T10:00:00.000Z', points: 3, avg: 2, min: 1, max: 3, sum: 6 },
      { bucket_start: '2026-03-01T11:00:00.000Z', points: 2, avg: 4.5, min: 4, max: 5, sum: 9 },
    ])
    const second = await get('/v1/admin/telemetry/metrics/series', { ...query, cursor: first.json().next_cursor })
    t.same(second.json(), {
      data: [{ bucket_start: '2026-03-01T12:00:00.000Z', points: 1, avg: 6, min: 6, max: 6, sum: 6 }],
      next_cursor: null,
    })
    const backwards = await get('/v1/admin/telemetry/metrics/series', { ...query, to: at(-1).toISOString() })
    t.equal(backwards.statusCode, 400)
    const badCursor = await get('/v1/admin/telemetry/metrics/series', { ...query, cursor: 'nonsense' })
    t.equal(badCursor.statusCode, 400)
    t.equal(badCursor.json().error, 'validation_failed')
  })

  t.test('bad query input is 400', async (t) => {
    t.equal((await get('/v1/admin/telemetry/traces/xyz')).statusCode, 400)
    t.equal((await get('/v1/admin/telemetry/spans', { from: 'yesterday' })).statusCode, 400)
    t.equal((await get('/v1/admin/telemetry/spans/slowest', { cursor: 'bm9wZQ' })).statusCode, 400)
    t.equal((await get('/v1/admin/telemetry/logs', { min_severity: '30' })).statusCode, 400)
  })
})
