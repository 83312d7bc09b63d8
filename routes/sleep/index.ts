import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { decodeTimeCursor, encodeTimeCursor, errorResponses, pageLimit, toPage } from '../common.ts'
import { addDays } from '../journal/zone.ts'
import type { ReadRoutesOptions } from '../owner-reads.ts'
import { createSleepRepository } from './repository.ts'
import {
  SleepDailyResultSchema,
  SleepListQuerySchema,
  SleepPageSchema,
  SleepRangeQuerySchema,
  toSessionJson,
} from './schemas.ts'
import { SLEEP_DEFINITIONS } from './sessions.ts'

export const MAX_DAYS = 366

const s = (ms: number) => ms / 1000

/** The validated day range of a query: real dates, `to` not before `from`, at most MAX_DAYS days. */
function dayRange(q: { from: string; to: string }) {
  for (const field of ['from', 'to'] as const) {
    if (addDays(q[field], 0) !== q[field]) {
      throw errors.validation([{ field: `query.${field}`, problem: 'is not a calendar date' }])
    }
  }
  const days = (Date.parse(q.to) - Date.parse(q.from)) / 86_400_000 + 1
  if (days < 1) throw errors.validation([{ field: 'query.to', problem: 'must not be before from' }])
  if (days > MAX_DAYS) throw errors.badRequest('range_too_large', `At most ${MAX_DAYS} days per request.`)
  return q
}

/**
 * The sleep read routes: the caller's own sleep under `/v1`, and (`shared`) a shared owner's under
 * `/v1/shared/:owner_id` for viewers with the measurement scope (sleep is derived from measurements).
 */
export const sleepReadRoutes: FastifyPluginAsyncTypebox<ReadRoutesOptions> = async function sleepReadRoutes(
  app,
  options,
) {
  const repo = createSleepRepository(app.db)
  const reads = app.ownerReads(options, 'measurement')

  app.get(
    '/sleep',
    {
      config: { reads: 'replica' },
      onRequest: app.authenticate,
      schema: reads.schema({
        tag: 'sleep',
        summary: 'Sleep sessions, dated by the day they end on',
        sharedSummary: "A shared owner's sleep sessions",
        description: `The sessions whose date (the local day they end on) is from \`from\` to \`to\` (inclusive, at most ${MAX_DAYS} days), in order of start; cursor-paginated. ${SLEEP_DEFINITIONS}`,
        querystring: SleepListQuerySchema,
        response: { 200: SleepPageSchema, ...errorResponses(400, 401) },
      }),
    },
    async function listSleep(request) {
      const { from, to } = dayRange(request.query)
      const limit = pageLimit(request.query)
      const after = decodeTimeCursor(request.query.cursor)
      const ownerId = await reads.owner(request)
      const timeZone = await app.userRepository.timeZone(ownerId)
      const rows = await repo.sessionsAfter(ownerId, { from, to, timeZone, after, count: limit + 1 })
      const vitals = await repo.vitals(ownerId, rows.slice(0, limit))
      const page = toPage(
        rows.map((x, i) => ({ x, v: vitals[i] })),
        limit,
        ({ x, v }) => toSessionJson(x, v),
        ({ x }) => encodeTimeCursor(new Date(x.start), x.id),
      )
      return { time_zone: timeZone, ...page }
    },
  )

  app.get(
    '/sleep/daily',
    {
      config: { reads: 'replica' },
      onRequest: app.authenticate,
      schema: reads.schema({
        tag: 'sleep',
        summary: 'Sleep per calendar day, against the sleep goal',
        sharedSummary: "A shared owner's sleep per calendar day",
        description: `Every day from \`from\` to \`to\` (inclusive, at most ${MAX_DAYS} days), in order: time asleep in the sessions dated on it (main and naps) against the profile's sleep_time_goal, and the main session. The sleep-goal insight and the statistics read this same summary. ${SLEEP_DEFINITIONS}`,
        querystring: SleepRangeQuerySchema,
        response: { 200: SleepDailyResultSchema, ...errorResponses(400, 401) },
      }),
    },
    async function dailySleep(request) {
      const { from, to } = dayRange(request.query)
      const ownerId = await reads.owner(request)
      const [timeZone, goal] = await Promise.all([app.userRepository.timeZone(ownerId), repo.goalOf(ownerId)])
      const days = await repo.daily(ownerId, from, to, timeZone)
      return {
        time_zone: timeZone,
        data: days.map((d) => ({
          date: d.date,
          total_sleep: d.total === null ? null : s(d.total),
          main_sleep: d.main ? s(d.main.asleep) : null,
          main_session_id: d.main?.id ?? null,
          session_count: d.sessions,
          sleep_time_goal: goal,
          goal_difference: d.total === null ? null : s(d.total) - goal,
          goal_met: d.total === null ? null : s(d.total) >= goal,
        })),
      }
    },
  )
}

export default sleepReadRoutes
