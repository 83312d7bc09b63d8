import { gzipSync } from 'node:zlib'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import {
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { buildTestApp } from '../helpers/app.ts'
import { sharedClient, userWithToken } from '../helpers/fixtures.ts'
import { hex, jsonSpan, logsBody, metricsBody, ns, sdkSpans, tracesBody } from '../helpers/telemetry.ts'

t.test('OTLP ingest', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const admin = await userWithToken(app, { role: 'admin' })
  const clientToken = await sharedClient(app)

  async function trace(traceId: string) {
    const res = await app.inject({ url: `/v1/admin/telemetry/traces/${traceId}`, headers: admin.headers })
    if (res.statusCode !== 200) throw new Error(`trace query: ${res.statusCode} ${res.body}`)
    return res.json().data as Array<Record<string, unknown>>
  }

  t.test('the real @opentelemetry/exporter-trace-otlp-http exporter (gzip) is accepted and queryable', async (t) => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    const exporter = new OTLPTraceExporter({
      url: `${address}/v1/telemetry/traces`,
      headers: { authorization: alice.headers.authorization },
      compression: 'gzip' as never,
    })
    const spans = sdkSpans()
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(spans, resolve))
    await exporter.shutdown()
    t.same(result, { code: 0 }, 'ExportResultCode.SUCCESS')

    const traceId = spans[0].spanContext().traceId
    const stored = await trace(traceId)
    t.equal(stored.length, 2)
    const parent = stored.find((s) => s.name === 'checkout')
    const child = stored.find((s) => s.name === 'db.query')
    t.match(parent, {
      trace_id: traceId,
      span_id: spans.find((s) => s.name === 'checkout')?.spanContext().spanId,
      parent_span_id: null,
      kind: 'server',
      status_code: 'error',
      status_message: 'sync failed',
      attributes: { 'screen.name': 'sync', retries: 3, ratio: 0.5, ok: true, tags: ['a', 'b'] },
      service_name: 'nowatch-ios',
      service_version: '2.4.1',
      scope_name: 'nowatch-app',
      user_id: alice.user.id,
      client_id: null,
    })
    t.match(child, {
      parent_span_id: parent?.span_id,
      kind: 'client',
      status_code: 'unset',
      events: [{ name: 'cache.miss', attributes: { key: 'k1' } }],
    })
    t.ok((child?.duration_ms as number) >= 0)
  })

  t.test('the JSON serialiser payload, with a client token: rows name the client app', async (t) => {
    const spans = sdkSpans('nowatch-watch', '0.9.0')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/traces',
      headers: { 'x-auth-token': clientToken, 'content-type': 'application/json' },
      payload: Buffer.from(JsonTraceSerializer.serializeRequest(spans) as Uint8Array),
    })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), {})
    const stored = await trace(spans[0].spanContext().traceId)
    t.equal(stored.length, 2)
    t.match(stored[0], { user_id: null, service_name: 'nowatch-watch' })
    t.match(stored[0].client_id, /^[0-9a-f-]{36}$/)
  })

  t.test('protobuf in, protobuf out (decoded by the real OpenTelemetry deserialiser)', async (t) => {
    const spans = sdkSpans()
    const res = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/traces',
      headers: { ...alice.headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array),
    })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['content-type'], 'application/x-protobuf')
    t.same(ProtobufTraceSerializer.deserializeResponse(res.rawPayload), {})
    const stored = await trace(spans[0].spanContext().traceId)
    t.same(stored.map((s) => s.name).sort(), ['checkout', 'db.query'])
    t.match(
      stored.find((s) => s.name === 'checkout'),
      { attributes: { retries: 3, tags: ['a', 'b'] }, status_code: 'error', service_version: '2.4.1' },
    )
  })

  t.test('partial success: bad spans are counted and explained, the good one is stored', async (t) => {
    const good = jsonSpan()
    const body = tracesBody([
      good,
      jsonSpan({ traceId: 'xyz' }),
      jsonSpan({ spanId: '0000000000000000' }),
      jsonSpan({ startTimeUnixNano: '2000', endTimeUnixNano: '1000' }),
      jsonSpan({ kind: 9 }),
      jsonSpan({ startTimeUnixNano: '1', endTimeUnixNano: '99999999999999999999' }),
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers: alice.headers, payload: body })
    t.equal(res.statusCode, 200)
    const partial = res.json().partialSuccess
    t.equal(partial.rejectedSpans, 5)
    t.match(partial.errorMessage, /1 span longer than 292 years/)
    t.match(partial.errorMessage, /1 invalid traceId/)
    t.match(partial.errorMessage, /1 invalid spanId/)
    t.match(partial.errorMessage, /1 endTimeUnixNano before startTimeUnixNano/)
    t.match(partial.errorMessage, /1 invalid kind/)
    const stored = await trace(good.traceId)
    t.equal(stored.length, 1)
    t.match(stored[0], { name: 'GET /sync', kind: 'client', status_code: 'ok', duration_ms: 2.5 })
    t.same(stored[0].attributes, { 'http.status_code': 200 })

    // A protobuf request gets its partial success in protobuf.
    const [first, second] = sdkSpans()
    const zeroTrace = Object.create(first, {
      spanContext: { value: () => ({ ...first.spanContext(), traceId: '0'.repeat(32) }) },
    })
    const pb = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/traces',
      headers: { ...alice.headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.from(ProtobufTraceSerializer.serializeRequest([zeroTrace, second]) as Uint8Array),
    })
    t.equal(pb.headers['content-type'], 'application/x-protobuf')
    t.same(ProtobufTraceSerializer.deserializeResponse(pb.rawPayload), {
      partialSuccess: { rejectedSpans: 1, errorMessage: '1 invalid traceId' },
    })
    t.equal((await trace(second.spanContext().traceId)).length, 1)
  })

  t.test('OTLP JSON rules: numbers or strings for 64-bit values, enum names, unknown fields ignored', async (t) => {
    const start = Date.now() - 1000
    const span = {
      ...jsonSpan(),
      startTimeUnixNano: start * 1e6,
      endTimeUnixNano: String(BigInt(start) * 1_000_000n + 1_000_000n),
      kind: 'SPAN_KIND_PRODUCER',
      futureField: { anything: [1, 2] },
      status: { code: 'STATUS_CODE_ERROR', message: 'x', extra: true },
      attributes: [
        { key: 'big', value: { intValue: '9007199254740993' } },
        { key: 'nul', value: { stringValue: 'a\u0000b' } },
        { key: 'kv', value: { kvlistValue: { values: [{ key: 'x', value: { doubleValue: 1.5 } }] } } },
        { key: 'bytes', value: { bytesValue: 'AQID' } },
      ],
    }
    const body = { ...tracesBody([span]), somethingNew: 1 }
    body.resourceSpans[0] = { ...body.resourceSpans[0], schemaUrl: 'https://example.com', newThing: {} } as never
    const res = await app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers: alice.headers, payload: body })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), {})
    const [stored] = await trace(span.traceId)
    t.match(stored, { kind: 'producer', status_code: 'error' })
    // A JSON number cannot hold every nanosecond of today: close to 1 ms is all it can promise.
    t.ok(Math.abs((stored.duration_ms as number) - 1) < 0.001)
    t.same(stored.attributes, { big: '9007199254740993', nul: 'ab', kv: { x: 1.5 }, bytes: 'AQID' })
  })

  t.test('hostile values are stored safely or rejected, never a server error', async (t) => {
    const junk = [
      null,
      5,
      'x',
      [],
      { stringValue: 7 },
      { arrayValue: { values: 'no' } },
      { kvlistValue: { values: [5] } },
    ]
    const span = jsonSpan({
      name: 'bad\ud800name\u0000',
      attributes: [
        { key: '__proto__', value: { stringValue: 'kept as a key' } },
        // The schema checks the first level of an AnyValue; the flattener everything below it.
        { key: 'nested', value: { arrayValue: { values: [{ arrayValue: { values: junk } }] } } },
        {
          key: 'lone\udc00',
          value: { kvlistValue: { values: [{ key: 'k', value: { stringValue: '\u0000\ud800' } }] } },
        },
      ],
    })
    const res = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/traces',
      headers: alice.headers,
      payload: tracesBody([span]),
    })
    t.equal(res.statusCode, 200, res.body)
    const [stored] = await trace(span.traceId)
    t.equal(stored.name, 'bad\ufffdname')
    const attrs = stored.attributes as Record<string, unknown>
    t.equal(Object.getOwnPropertyDescriptor(attrs, '__proto__')?.value, 'kept as a key')
    t.equal(Object.getPrototypeOf(attrs), Object.prototype)
    t.same(Object.keys(attrs).sort(), ['__proto__', 'lone\ufffd', 'nested'])
    t.same(
      { nested: attrs.nested, 'lone\ufffd': attrs['lone\ufffd'] },
      {
        nested: [[null, null, null, null, null, null, {}]],
        'lone\ufffd': { k: '\ufffd' },
      },
    )

    const at = ns(new Date())
    const metrics = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/metrics',
      headers: alice.headers,
      payload: metricsBody([
        {
          name: 'exp',
          exponentialHistogram: {
            dataPoints: [
              { timeUnixNano: at, count: 3, sum: 3, positive: { offset: 1, bucketCounts: ['1', 2] } },
              { timeUnixNano: at, count: 1, positive: { offset: 'x' } },
              { timeUnixNano: at, count: 1, negative: { bucketCounts: [{}] } },
            ],
          },
        },
        { name: 'q', summary: { dataPoints: [{ timeUnixNano: at, count: 1, quantileValues: [{ quantile: {} }] }] } },
      ]),
    })
    t.equal(metrics.statusCode, 200, metrics.body)
    t.same(metrics.json(), {
      partialSuccess: {
        rejectedDataPoints: 3,
        errorMessage: '1 invalid positive.offset; 1 invalid negative.bucketCounts; 1 invalid quantileValues.quantile',
      },
    })
  })

  t.test('an empty export is a success', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/v1/telemetry/traces', headers: alice.headers, payload: {} })
    t.equal(res.statusCode, 200)
    t.same(res.json(), {})
  })

  t.test('metrics: gauge, sum, histogram and summary points; a point without a value is rejected', async (t) => {
    const at = new Date(Date.UTC(2026, 0, 10, 12, 0, 30))
    const body = metricsBody([
      {
        name: 'app.sync.duration',
        unit: 'ms',
        gauge: {
          dataPoints: [
            { timeUnixNano: ns(at), asDouble: 12.5, attributes: [{ key: 'net', value: { stringValue: 'wifi' } }] },
            { timeUnixNano: ns(at), asInt: '20' },
            { timeUnixNano: ns(at) },
          ],
        },
      },
      {
        name: 'app.crashes',
        sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ timeUnixNano: ns(at), asInt: 3 }] },
      },
      {
        name: 'app.latency',
        histogram: {
          aggregationTemporality: 1,
          dataPoints: [
            {
              timeUnixNano: ns(at),
              count: '4',
              sum: 100,
              min: 5,
              max: 50,
              bucketCounts: ['1', '3'],
              explicitBounds: [10],
            },
          ],
        },
      },
      { name: 'app.unknown', newKindOfMetric: { dataPoints: [] } },
      { name: 'app.overflow', histogram: { dataPoints: [{ timeUnixNano: ns(at), count: '99999999999999999999' }] } },
    ])
    const res = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/metrics',
      headers: alice.headers,
      payload: body,
    })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), {
      partialSuccess: {
        rejectedDataPoints: 2,
        errorMessage: '1 data point without a value; 1 invalid count; metric "app.unknown" has no known data',
      },
    })
    const series = await app.inject({
      url: '/v1/admin/telemetry/metrics/series',
      query: { name: 'app.sync.duration', from: '2026-01-10T00:00:00Z', to: '2026-01-11T00:00:00Z', bucket: '1h' },
      headers: admin.headers,
    })
    t.equal(series.statusCode, 200, series.body)
    t.same(series.json(), {
      data: [{ bucket_start: '2026-01-10T12:00:00.000Z', points: 2, avg: 16.25, min: 12.5, max: 20, sum: 32.5 }],
      next_cursor: null,
    })
    const hist = await app.inject({
      url: '/v1/admin/telemetry/metrics/series',
      query: { name: 'app.latency', from: '2026-01-10T00:00:00Z', to: '2026-01-11T00:00:00Z', bucket: '1d' },
      headers: admin.headers,
    })
    t.match(hist.json().data, [{ bucket_start: '2026-01-10T00:00:00.000Z', points: 1, avg: 25 }])
  })

  t.test('metrics and logs in protobuf, from the real serialisers', async (t) => {
    const { metricsPayload, logsPayload } = await import('../helpers/telemetry-sdk.ts')
    const m = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/metrics',
      headers: { ...alice.headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.from(ProtobufMetricsSerializer.serializeRequest(await metricsPayload()) as Uint8Array),
    })
    t.equal(m.statusCode, 200, m.body)
    t.same(ProtobufMetricsSerializer.deserializeResponse(m.rawPayload), {})
    const l = await app.inject({
      method: 'POST',
      url: '/v1/telemetry/logs',
      headers: { ...alice.headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.from(ProtobufLogsSerializer.serializeRequest(logsPayload()) as Uint8Array),
    })
    t.equal(l.statusCode, 200, l.body)
    t.same(ProtobufLogsSerializer.deserializeResponse(l.rawPayload), {})
    const logs = await app.inject({
      url: '/v1/admin/telemetry/logs',
      query: { service: 'nowatch-sdk-logs' },
      headers: admin.headers,
    })
    t.match(logs.json().data, [
      { severity_number: 17, severity_text: 'ERROR', body: 'upload failed', attributes: { 'http.status': 503 } },
    ])
    const series = await app.inject({
      url: '/v1/admin/telemetry/metrics/series',
      query: {
        name: 'sdk.requests',
        from: new Date(Date.now() - 3600_000).toISOString(),
        to: new Date(Date.now() + 3600_000).toISOString(),
        bucket: '1d',
      },
      headers: admin.headers,
    })
    t.match(series.json().data, [{ points: 1, sum: 7 }])
  })

  t.test('logs: bad records rejected, the rest stored with severity, body and trace link', async (t) => {
    const traceId = hex(16)
    const body = logsBody([
      {
        timeUnixNano: ns(new Date()),
        severityNumber: 13,
        severityText: 'WARN',
        body: { stringValue: 'battery low 5%' },
        traceId,
        spanId: hex(8),
        attributes: [{ key: 'level', value: { intValue: 5 } }],
      },
      {
        observedTimeUnixNano: ns(new Date()),
        severityNumber: 'SEVERITY_NUMBER_INFO',
        body: { kvlistValue: { values: [{ key: 'a', value: { boolValue: true } }] } },
      },
      { timeUnixNano: ns(new Date()), severityNumber: 99 },
      { timeUnixNano: ns(new Date()), traceId: 'nothex' },
    ])
    const res = await app.inject({ method: 'POST', url: '/v1/telemetry/logs', headers: alice.headers, payload: body })
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      partialSuccess: { rejectedLogRecords: 2, errorMessage: '1 invalid severityNumber; 1 invalid traceId' },
    })
    const found = await app.inject({
      url: '/v1/admin/telemetry/logs',
      query: { trace_id: traceId },
      headers: admin.headers,
    })
    t.match(found.json().data, [
      {
        severity_number: 13,
        severity_text: 'WARN',
        body: 'battery low 5%',
        attributes: { level: 5 },
        trace_id: traceId,
      },
    ])
  })

  t.test('credentials: a bearer token, a client token, or both; each must be valid', async (t) => {
    const post = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/v1/telemetry/logs', headers, payload: {} })
    const none = await post({})
    t.equal(none.statusCode, 401)
    t.equal(none.json().error, 'unauthorized')
    t.equal((await post({ authorization: 'Bearer nope' })).json().error, 'invalid_token')
    t.equal((await post({ 'x-auth-token': 'bm9wZQ==' })).json().error, 'invalid_client')
    t.equal((await post({ ...alice.headers, 'x-auth-token': 'bm9wZQ==' })).statusCode, 401)
    t.equal((await post({ ...alice.headers, 'x-auth-token': clientToken })).statusCode, 200)
  })
})

t.test('gzip bodies are accepted on every signal', async (t) => {
  const app = await buildTestApp(t)
  const { headers } = await userWithToken(app)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/telemetry/logs',
    headers: { ...headers, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: gzipSync(JSON.stringify(logsBody([{ timeUnixNano: ns(new Date()), body: { stringValue: 'hi' } }]))),
  })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), {})
})

t.test('a re-sent export stores nothing twice (idempotent on the signal identity)', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  const at = new Date(Date.now() - 60_000)
  const spans = tracesBody([jsonSpan(), jsonSpan()])
  const logs = logsBody([
    { timeUnixNano: ns(at), severityNumber: 9, body: { stringValue: 'sync started' } },
    { timeUnixNano: ns(at), severityNumber: 9, body: { stringValue: 'sync done' } },
  ])
  const metrics = metricsBody([
    { name: 'app.sync.duration', unit: 'ms', gauge: { dataPoints: [{ timeUnixNano: ns(at), asDouble: 12.5 }] } },
  ])
  const send = (url: string, payload: object, headers = alice.headers) =>
    app.inject({ method: 'POST', url, headers, payload })
  const counts = async () => {
    const [row] = await queryRows<{ spans: number; logs: number; points: number }>(
      app.db,
      sql`select (select count(*)::int from telemetry_spans) as spans, (select count(*)::int from telemetry_logs) as logs,
          (select count(*)::int from telemetry_metric_points) as points`,
    )
    return row
  }
  for (let i = 0; i < 3; i++) {
    t.equal((await send('/v1/telemetry/traces', spans)).statusCode, 200)
    t.equal((await send('/v1/telemetry/logs', logs)).statusCode, 200)
    t.equal((await send('/v1/telemetry/metrics', metrics)).statusCode, 200)
  }
  t.same(await counts(), { spans: 2, logs: 2, points: 1 }, 'three sends, one copy of each record')
  // The same log content from another sender is another record; a span is its ids whoever sends it.
  await send('/v1/telemetry/logs', logs, bob.headers)
  await send('/v1/telemetry/traces', spans, bob.headers)
  t.same(await counts(), { spans: 2, logs: 4, points: 1 })
})
