import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { sql } from 'drizzle-orm'
import { errors } from '../../plugins/errors.ts'
import { errorResponses } from '../common.ts'

const HealthSchema = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })
const ReadySchema = Type.Object(
  {
    status: Type.Literal('ready'),
    database: Type.Union([Type.Literal('pglite'), Type.Literal('postgres')]),
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
      return { status: 'ready' as const, database: app.database.kind }
    },
  )
}

export default systemRoutes
