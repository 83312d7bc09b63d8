import { FastifyOtelInstrumentation } from '@fastify/otel'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'

/**
 * Traces of the server itself (OpenTelemetry), off unless the standard exporter variables are set:
 * OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/traces` is appended) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used
 * as is), with OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME and the rest read by the SDK itself.
 * https://opentelemetry.io/docs/specs/otel/protocol/exporter/
 *
 * Spans: each request and its hooks and handler (@fastify/otel), each PostgreSQL query
 * (@opentelemetry/instrumentation-pg; the embedded PGlite has no driver to instrument). Tracing starts
 * when this module is evaluated, which must be before `pg` is loaded: server.ts imports it first, so
 * the pg instrumentation's require hook is in place when db/client.ts loads the driver.
 */
export interface Tracing {
  /** The Fastify plugin that opens a span per request; buildApp registers it first. */
  fastifyPlugin: ReturnType<FastifyOtelInstrumentation['plugin']>
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>
}

let active: Tracing | null = null

export function tracingEnabled(env: Record<string, string | undefined> = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

/** Starts tracing when the environment asks for it; once per process. */
export function startTracing(env: Record<string, string | undefined> = process.env): Tracing | null {
  if (active || !tracingEnabled(env) || env.OTEL_SDK_DISABLED === 'true') return active
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'nowatch-api' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1000 })],
  })
  provider.register()
  const pg = new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false })
  pg.setTracerProvider(provider)
  const fastify = new FastifyOtelInstrumentation({ ignorePaths: (opts) => opts.url === '/metrics' })
  fastify.setTracerProvider(provider)
  active = {
    fastifyPlugin: fastify.plugin(),
    async shutdown() {
      await provider.shutdown()
    },
  }
  return active
}

/** The running tracing, if any (buildApp registers its plugin, server.ts flushes it at shutdown). */
export function currentTracing(): Tracing | null {
  return active
}

startTracing(process.env)
