import { gzipSync } from 'node:zlib'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { decodeRpcStatus } from '../../routes/telemetry/otlp-proto.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { jsonSpan, logsBody, ns, tracesBody } from '../helpers/telemetry.ts'

const MAX = 4096

t.test('size limits, encodings and malformed bodies', async (t) => {
  const app = await buildTestApp(t, { env: { TELEMETRY_MAX_BYTES: String(MAX) } })
  const { headers } = await userWithToken(app)
  const post = (payload: string | Buffer, extra: Record<string, string> = {}, url = '/v1/telemetry/logs') =>
    app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json', ...extra }, payload })
  const bigLog = JSON.stringify(logsBody([{ timeUnixNano: ns(new Date()), body: { stringValue: 'x'.repeat(MAX) } }]))

  t.test('a body over TELEMETRY_MAX_BYTES is 413', async (t) => {
    const res = await post(bigLog)
    t.equal(res.statusCode, 413)
    t.equal(res.json().error, 'payload_too_large')
  })

  t.test('a small gzip that inflates past the limit is 413 (gzip bomb)', async (t) => {
    const bomb = gzipSync(bigLog.repeat(50))
    t.ok(bomb.length < MAX, 'compressed it fits')
    const res = await post(bomb, { 'content-encoding': 'gzip' })
    t.equal(res.statusCode, 413)
    t.equal(res.json().error, 'payload_too_large')
  })

  t.test('gzip within the limit is accepted', async (t) => {
    const res = await post(
      gzipSync(JSON.stringify(tracesBody([jsonSpan()]))),
      { 'content-encoding': 'gzip' },
      '/v1/telemetry/traces',
    )
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), {})
  })

  t.test('broken gzip is 400 invalid_gzip', async (t) => {
    const res = await post(Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'invalid_gzip')
  })

  t.test('another content encoding is 415', async (t) => {
    const res = await post('{}', { 'content-encoding': 'br' })
    t.equal(res.statusCode, 415)
    t.equal(res.json().error, 'unsupported_encoding')
  })

  t.test('another content type is 415', async (t) => {
    const res = await post('hello', { 'content-type': 'text/plain' })
    t.equal(res.statusCode, 415)
    t.equal(res.json().error, 'unsupported_media_type')
  })

  t.test('bad JSON, bad protobuf and a wrong shape are 400', async (t) => {
    const json = await post('{"resourceLogs": [')
    t.equal(json.statusCode, 400)
    t.equal(json.json().error, 'invalid_json')
    const pb = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff]), { 'content-type': 'application/x-protobuf' })
    t.equal(pb.statusCode, 400)
    t.match(pb.headers['content-type'], /^application\/x-protobuf/, 'a protobuf request gets a protobuf error')
    const status = decodeRpcStatus(pb.rawPayload)
    t.equal(status.code, 3, 'google.rpc.Status INVALID_ARGUMENT')
    t.match(status.message, /^invalid_protobuf: /)
    const shape = await post(JSON.stringify({ resourceLogs: 5 }))
    t.equal(shape.statusCode, 400)
    t.match(shape.json(), { error: 'validation_failed', details: [{ field: 'resourceLogs' }] })
    const proto = await post('{"__proto__": {"x": 1}}')
    t.equal(proto.statusCode, 400)
  })
})

t.test('too many exports from one sender: 429 with Retry-After', async (t) => {
  const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const { user, headers } = await userWithToken(app)
  // Fill this minute's (and the next one's) counter, as 600 earlier exports would have.
  for (const offset of [0, 60_000]) {
    const start = Math.floor((Date.now() + offset) / 60_000) * 60_000
    await app.db.execute(sql`insert into rate_counters (key, window_start, count, expires_at)
      values (${`telemetry:user:${user.id}`}, to_timestamp(${start / 1000}), 600, to_timestamp(${(start + 60_000) / 1000}))`)
  }
  const res = await app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers, payload: {} })
  t.equal(res.statusCode, 429)
  t.equal(res.json().error, 'rate_limited')
  t.match(res.headers['retry-after'], /^\d+$/)
})

t.test(
  'more exports at once than one process takes: 503 overloaded with Retry-After, and the slots come back',
  async (t) => {
    const app = await buildTestApp(t)
    const { headers } = await userWithToken(app)
    const payload = tracesBody(Array.from({ length: 50 }, () => jsonSpan()))
    const all = await Promise.all(
      Array.from({ length: 40 }, () => app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers, payload })),
    )
    const overloaded = all.filter((r) => r.statusCode === 503)
    t.ok(overloaded.length > 0, 'some were turned away')
    t.ok(
      all.every((r) => r.statusCode === 200 || r.statusCode === 503),
      'the others were stored',
    )
    t.same(overloaded[0].json(), { error: 'overloaded', message: 'Too many exports at once; retry shortly.' })
    t.equal(overloaded[0].headers['retry-after'], '1')
    // Every slot is released once the answers are out: a run of exports one after another all pass.
    for (let i = 0; i < 20; i++) {
      const res = await app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers, payload: {} })
      t.equal(res.statusCode, 200)
    }
  },
)
