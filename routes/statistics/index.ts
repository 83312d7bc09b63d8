import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { errorResponses } from '../common.ts'
import type { ReadRoutesOptions } from '../owner-reads.ts'
import { STATISTIC_KEYS, type StatisticKey, createStatisticsRepository } from './repository.ts'
import { DailyQuerySchema, DailyResultSchema, SummaryQuerySchema, SummaryResultSchema } from './schemas.ts'

export const MAX_DAYS = 366
const DAY_MS = 86_400_000

/** Calendar arithmetic on YYYY-MM-DD strings (no time zone involved: these are labels of local days). */
const dayNumber = (date: string) => Date.parse(`${date}T00:00:00Z`) / DAY_MS
const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10)
const addDays = (date: string, n: number) => dateOf(dayNumber(date) + n)

/**
 * The week (Monday..Sunday, or Sunday..Saturday with `weekStart: 'sunday'`) or calendar month holding
 * `date`, and the one before it.
 */
export function periodsOf(period: 'week' | 'month', date: string, weekStart: 'monday' | 'sunday' = 'monday') {
  if (period === 'week') {
    const offset = weekStart === 'sunday' ? 0 : 6
    const weekday = (new Date(`${date}T00:00:00Z`).getUTCDay() + offset) % 7
    const from = addDays(date, -weekday)
    return { current: { from, to: addDays(from, 6) }, previous: { from: addDays(from, -7), to: addDays(from, -1) } }
  }
  const [y, m] = date.split('-').map(Number)
  const first = (year: number, month: number) => new Date(Date.UTC(year, month - 1, 1)).toISOString().slice(0, 10)
  const from = first(y, m)
  const previousFrom = first(y, m - 1)
  return {
    current: { from, to: addDays(first(y, m + 1), -1) },
    previous: { from: previousFrom, to: addDays(from, -1) },
  }
}

function todayIn(timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(
    new Date(),
  )
}

function isRealDate(date: string): boolean {
  return dateOf(dayNumber(date)) === date
}

/**
 * Every statistics route is read-only: registered under `/v1` for the caller's own data, and under
 * `/v1/shared/:owner_id` (app.ts) for a shared owner's, in the owner's time zone.
 */
const statisticsRoutes: FastifyPluginAsyncTypebox<ReadRoutesOptions> = async function statisticsRoutes(app, options) {
  const repo = createStatisticsRepository(app.db)
  const reads = app.ownerReads(options, 'statistics')

  app.get(
    '/statistics/daily',
    {
      config: { reads: 'replica' },
      onRequest: app.authenticate,
      schema: reads.schema({
        tag: 'statistics',
        summary: "Statistics per calendar day in the user's time zone",
        sharedSummary: "A shared owner's statistics per calendar day in the owner's time zone",
        description:
          `Every day from \`from\` to \`to\` (inclusive, at most ${MAX_DAYS} days), in order, with null for what ` +
          "the day has no samples of. Days follow the user's time zone, so a DST day covers 23 or 25 hours.",
        querystring: DailyQuerySchema,
        response: { 200: DailyResultSchema, ...errorResponses(400, 401) },
      }),
    },
    async function daily(request) {
      const { from, to } = request.query
      if (!isRealDate(from)) throw errors.validation([{ field: 'query.from', problem: 'is not a calendar date' }])
      if (!isRealDate(to)) throw errors.validation([{ field: 'query.to', problem: 'is not a calendar date' }])
      const days = dayNumber(to) - dayNumber(from) + 1
      if (days < 1) throw errors.validation([{ field: 'query.to', problem: 'must not be before from' }])
      if (days > MAX_DAYS) throw errors.badRequest('range_too_large', `At most ${MAX_DAYS} days per request.`)
      const ownerId = await reads.owner(request)
      const timeZone = await app.userRepository.timeZone(ownerId)
      return { time_zone: timeZone, data: await repo.daily(ownerId, from, to, timeZone) }
    },
  )

  app.get(
    '/statistics/summary',
    {
      config: { reads: 'replica' },
      onRequest: app.authenticate,
      schema: reads.schema({
        tag: 'statistics',
        summary: 'Statistics over a week or a month, with the change against the previous one',
        sharedSummary: "A shared owner's statistics over a week or a month, with the change against the previous one",
        description:
          "Weeks start on the caller's `week_start` setting (Monday by default, or Sunday; for a shared owner's data too, " +
          "since it is the reader's calendar), months are calendar months, both in the owner's time zone. Averages weigh " +
          "every sample equally; resting_heart_rate is the mean of the days' values; min/max are over the period; " +
          'steps, distance and active_energy are totals (months differ in length: compare `days_with_data`).',
        querystring: SummaryQuerySchema,
        response: { 200: SummaryResultSchema, ...errorResponses(400, 401) },
      }),
    },
    async function summary(request) {
      const { period } = request.query
      const ownerId = await reads.owner(request)
      const timeZone = await app.userRepository.timeZone(ownerId)
      const date = request.query.date ?? todayIn(timeZone)
      if (!isRealDate(date)) throw errors.validation([{ field: 'query.date', problem: 'is not a calendar date' }])
      const weekStart = period === 'week' ? await app.userRepository.setting(request.user.sub, 'week_start') : 'monday'
      const periods = periodsOf(period, date, weekStart as 'monday' | 'sunday')
      const values = await repo.periods(ownerId, timeZone, periods.current, periods.previous)
      const metrics = Object.fromEntries(
        STATISTIC_KEYS.map((k) => {
          const value = values.current[k]
          const previous = values.previous[k]
          const change = value === null || previous === null ? null : value - previous
          const changePercent = change === null || !previous ? null : (100 * change) / previous
          return [k, { value, previous, change, change_percent: changePercent }]
        }),
      ) as Record<
        StatisticKey,
        { value: number | null; previous: number | null; change: number | null; change_percent: number | null }
      >
      return {
        period,
        time_zone: timeZone,
        ...periods,
        days_with_data: values.current.days_with_data,
        previous_days_with_data: values.previous.days_with_data,
        metrics,
      }
    },
  )
}

export default statisticsRoutes
