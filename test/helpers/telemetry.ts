import { randomBytes } from 'node:crypto'
import { context, trace } from '@opentelemetry/api'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'

/** Real SDK spans: a parent `checkout` (error status, attributes) and a child `db.query` with an event. */
export function sdkSpans(service = 'nowatch-ios', version = '2.4.1'): ReadableSpan[] {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': version }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  })
  const tracer = provider.getTracer('nowatch-app', '1.0.0')
  const parent = tracer.startSpan('checkout', {
    kind: 1,
    attributes: { 'screen.name': 'sync', retries: 3, ratio: 0.5, ok: true, tags: ['a', 'b'] },
  })
  const child = tracer.startSpan('db.query', { kind: 2 }, trace.setSpan(context.active(), parent))
  child.addEvent('cache.miss', { key: 'k1' })
  child.end()
  parent.setStatus({ code: 2, message: 'sync failed' })
  parent.end()
  return exporter.getFinishedSpans()
}

export const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const NOW_NS = () => BigInt(Date.now()) * 1_000_000n

/** One hand-written OTLP/JSON span (strings for 64-bit values, as the spec's examples). */
export function jsonSpan(over: Record<string, unknown> = {}) {
  const start = NOW_NS() - 5_000_000n
  return {
    traceId: hex(16),
    spanId: hex(8),
    name: 'GET /sync',
    kind: 3,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 2_500_000n),
    attributes: [{ key: 'http.status_code', value: { intValue: '200' } }],
    status: { code: 1 },
    ...over,
  }
}

export function tracesBody(spans: unknown[], service = 'nowatch-android', version = '1.0.0') {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: service } },
            { key: 'service.version', value: { stringValue: version } },
          ],
        },
        scopeSpans: [{ scope: { name: 'app' }, spans }],
      },
    ],
  }
}

export function metricsBody(metrics: unknown[], service = 'nowatch-android') {
  return {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeMetrics: [{ scope: { name: 'app' }, metrics }],
      },
    ],
  }
}

export function logsBody(logRecords: unknown[], service = 'nowatch-android') {
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeLogs: [{ scope: { name: 'app' }, logRecords }],
      },
    ],
  }
}

/** Nanoseconds (as OTLP strings) for a Date. */
export const ns = (at: Date) => String(BigInt(at.getTime()) * 1_000_000n)
