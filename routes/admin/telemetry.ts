import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { instantMs } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { PageSchema, errorResponses, pageLimit } from '../common.ts'
import { createTelemetryRepository } from '../telemetry/repository.ts'
import {
  LogOutSchema,
  LogsQuerySchema,
  MetricBucketSchema,
  MetricSeriesQuerySchema,
  SlowestSpansQuerySchema,
  SpanOutSchema,
  SpansQuerySchema,
  TraceParamsSchema,
} from '../telemetry/schemas.ts'

const adminDescription = (what: string) =>
  `${what} Admin role only; every read is in the audit log (who, when, with which filters), since telemetry can carry personal data. Telemetry is kept TELEMETRY_RETENTION_DAYS (default 30) after it was received.`

/** What administrators read of the stored telemetry (traces, spans, logs, metric series). */
const adminTelemetryRoutes: FastifyPluginAsyncTypebox = async function adminTelemetryRoutes(app) {
  const repo = createTelemetryRepository(app.db)

  // Every route here is for administrators (the routes/admin convention: one hook per plugin).
  app.addHook('onRequest', app.requireAdmin)

  const admin = { tags: ['telemetry'], security: SECURITY.bearer }

  app.get(
    '/admin/telemetry/traces/:trace_id',
    {
      config: { reads: 'replica' },
      schema: {
        tags: admin.tags,
        security: admin.security,
        summary: 'The spans of one trace, in start order',
        description: adminDescription('Every stored span with this trace id, whoever sent it.'),
        params: TraceParamsSchema,
        querystring: Type.Pick(SpansQuerySchema, ['limit', 'cursor'], { additionalProperties: false }),
        response: { 200: PageSchema(SpanOutSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function traceSpans(request) {
      await app.audit.record(request, {
        action: 'telemetry.trace.read',
        targetType: 'telemetry_trace',
        targetId: request.params.trace_id,
        details: { ...request.query },
      })
      return repo.trace(request.params.trace_id, pageLimit(request.query), request.query.cursor)
    },
  )

  app.get(
    '/admin/telemetry/spans',
    {
      config: { reads: 'replica' },
      schema: {
        tags: admin.tags,
        security: admin.security,
        summary: 'Spans by service, name, user and start time, newest first',
        description: adminDescription('`from` is inclusive, `to` exclusive, on the span start time.'),
        querystring: SpansQuerySchema,
        response: { 200: PageSchema(SpanOutSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function listSpans(request) {
      await app.audit.record(request, {
        action: 'telemetry.spans.read',
        targetType: 'telemetry',
        details: { ...request.query },
      })
      return repo.spans({ ...request.query, limit: pageLimit(request.query) })
    },
  )

  app.get(
    '/admin/telemetry/spans/slowest',
    {
      config: { reads: 'replica' },
      schema: {
        tags: admin.tags,
        security: admin.security,
        summary: 'The longest spans first, by service, name, user and start time',
        description: adminDescription('Ordered by duration (nanosecond precision), longest first.'),
        querystring: SlowestSpansQuerySchema,
        response: { 200: PageSchema(SpanOutSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function slowestSpans(request) {
      await app.audit.record(request, {
        action: 'telemetry.slowest_spans.read',
        targetType: 'telemetry',
        details: { ...request.query },
      })
      return repo.slowestSpans({ ...request.query, limit: pageLimit(request.query) })
    },
  )

  app.get(
    '/admin/telemetry/logs',
    {
      config: { reads: 'replica' },
      schema: {
        tags: admin.tags,
        security: admin.security,
        summary: 'Log records by severity, service, time, trace and text, newest first',
        description: adminDescription(
          '`min_severity` is an OTLP severity number (records at or above it); `q` matches a substring of the body, ignoring case; `from` inclusive, `to` exclusive.',
        ),
        querystring: LogsQuerySchema,
        response: { 200: PageSchema(LogOutSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function listLogs(request) {
      await app.audit.record(request, {
        action: 'telemetry.logs.read',
        targetType: 'telemetry',
        details: { ...request.query },
      })
      return repo.logs({ ...request.query, limit: pageLimit(request.query) })
    },
  )

  app.get(
    '/admin/telemetry/metrics/series',
    {
      config: { reads: 'replica' },
      schema: {
        tags: admin.tags,
        security: admin.security,
        summary: 'One metric over time, in buckets',
        description: adminDescription(
          'Buckets are aligned on UTC (`bucket`: 1m, 5m, 15m, 1h, 6h, 1d), oldest first; buckets without points are left out. ' +
            'Each point counts with its value: the number for gauges and sums, the mean (sum / count) for histograms and summaries. ' +
            '`from` inclusive, `to` exclusive.',
        ),
        querystring: MetricSeriesQuerySchema,
        response: { 200: PageSchema(MetricBucketSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function metricSeries(request) {
      const q = request.query
      await app.audit.record(request, { action: 'telemetry.metrics.read', targetType: 'telemetry', details: { ...q } })
      if (instantMs(q.to) <= instantMs(q.from)) {
        throw errors.validation([{ field: 'query.to', problem: 'must be after from' }])
      }
      return repo.metricSeries({ ...q, limit: pageLimit(q), bucket: q.bucket as '1h' })
    },
  )
}

export default adminTelemetryRoutes
