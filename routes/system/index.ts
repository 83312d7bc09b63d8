import { createHash, timingSafeEqual } from 'node:crypto'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { sql } from 'drizzle-orm'
import { errors } from '../../plugins/errors.ts'
import { errorResponses } from '../common.ts'

const HealthSchema = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })
const ReadySchema = Type.Object(
  {
    status: Type.Literal('ready'),
    database: Type.Union([Type.Literal('pglite'), Type.Literal('postgres')]),
    replicas: Type.Optional(
      Type.Array(
        Type.Object(
          {
            replica: Type.Integer({ minimum: 1, description: 'Its place in DATABASE_REPLICA_URLS (1 = first).' }),
            state: Type.Union(
              [Type.Literal('starting'), Type.Literal('up'), Type.Literal('lagging'), Type.Literal('down')],
              {
                description:
                  '`up`: in rotation; `lagging`: further behind than REPLICA_MAX_LAG_S; `down`: not answering.',
              },
            ),
            lag_seconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
              description: 'How far behind the primary, as this process last measured it; null when not measured.',
            }),
            reason: Type.Optional(
              Type.String({ description: 'Why it is out of rotation (no address or credentials).' }),
            ),
          },
          { additionalProperties: false },
        ),
        {
          description:
            'Only with DATABASE_REPLICA_URLS. A replica out of rotation does not make the server unready: its reads go to the primary.',
        },
      ),
    ),
  },
  { additionalProperties: false },
)

const systemRoutes: FastifyPluginAsyncTypebox = async function systemRoutes(app) {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['system'],
        summary: 'Liveness: the process is up',
        response: { 200: HealthSchema },
      },
    },
    async function healthz() {
      return { status: 'ok' as const }
    },
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['system'],
        summary: 'Readiness: the database answers and every migration is applied',
        description:
          'Ready when the primary answers and every migration is applied. With read replicas (DATABASE_REPLICA_URLS) it ' +
          "also reports each replica's state and lag, as this process's health check (every REPLICA_CHECK_INTERVAL_MS) last saw them.",
        response: { 200: ReadySchema, ...errorResponses(503) },
      },
    },
    async function readyz() {
      let pending: number
      try {
        await app.db.execute(sql`select 1`)
        pending = await app.database.pendingMigrations()
      } catch {
        throw errors.unavailable('not_ready', 'The database is not reachable.')
      }
      if (pending > 0) throw errors.unavailable('not_ready', `${pending} database migration(s) are not applied yet.`)
      const replicas = app.database.replicas?.status()
      return { status: 'ready' as const, database: app.database.kind, ...(replicas && { replicas }) }
    },
  )

  const digest = (s: string) => createHash('sha256').update(s).digest()
  const metricsToken = app.config.METRICS_TOKEN ? digest(`Bearer ${app.config.METRICS_TOKEN}`) : null
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics of this process (operators only)',
        description:
          'The Prometheus text format (prom-client): `http_request_duration_seconds` and `http_request_errors_total` ' +
          'by route pattern, method, status (and error identifier); `db_query_duration_seconds`, `db_pool_connections`; ' +
          '`job_queue_depth` and `job_queue_oldest_age_seconds` (mail outbox); `measurement_samples_ingested_total`; `measurement_upload_group_size`; ' +
          '`auth_login_failures_total`; `rate_limit_hits_total`; and the process defaults. Never public: answered only ' +
          'with `Authorization: Bearer <METRICS_TOKEN>` (`401 unauthorized` otherwise), and `404 not_found` while ' +
          'METRICS_TOKEN is unset. Labels never carry ids or personal data.',
        response: {
          200: {
            description: 'The metrics, Prometheus text exposition format 0.0.4.',
            content: { 'text/plain': { schema: Type.String() } },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async function metrics(request, reply) {
      if (!metricsToken) throw errors.notFound('Metrics are off: set METRICS_TOKEN to serve them.')
      const given = request.headers.authorization
      if (!given || !timingSafeEqual(digest(given), metricsToken)) {
        throw errors.unauthorized('unauthorized', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.')
      }
      reply.type(app.metrics.registry.contentType)
      return app.metrics.registry.metrics()
    },
  )
}

export default systemRoutes
