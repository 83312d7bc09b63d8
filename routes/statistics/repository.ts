import type { Db } from '../../db/client.ts'
import {
  STATISTIC_KEYS as MEASUREMENT_KEYS,
  type DailyStatistics as MeasurementDailyStatistics,
  createMeasurementRepository,
} from '../measurement/repository.ts'
import { createSleepRepository } from '../sleep/repository.ts'
import type { SleepDay } from '../sleep/sessions.ts'
import { createUserRepository } from '../user/repository.ts'
import { type JournalDay, journalDays } from './day-mood.ts'

/** Seconds asleep of a day, as GET /v1/sleep/daily's total_sleep (null without sleep). */
export interface SleepStatistic {
  sleep_time: number | null
}

/** A day's statistics: the measurements', the sleep domain's and the journal's (mood, check-ins). */
export type DailyStatistics = MeasurementDailyStatistics & SleepStatistic & JournalDay
export type StatisticKey = Exclude<keyof DailyStatistics, 'date'>
export type PeriodStatistics = Omit<DailyStatistics, 'date'> & { days_with_data: number }

export const STATISTIC_KEYS: StatisticKey[] = [...MEASUREMENT_KEYS, 'sleep_time', 'mood', 'checkin_count']

const NO_JOURNAL: JournalDay = { mood: null, checkin_count: 0 }

/** The journal part of a period: the mean of its days' moods and its number of check-ins. */
function journalPeriod(days: Map<string, JournalDay>, from: string, to: string): JournalDay {
  let checkins = 0
  const moods: number[] = []
  for (const [date, day] of days) {
    if (date < from || date > to) continue
    checkins += day.checkin_count
    if (day.mood !== null) moods.push(day.mood)
  }
  return {
    mood: moods.length ? moods.reduce((a, b) => a + b, 0) / moods.length : null,
    checkin_count: checkins,
  }
}

/** The sleep part of a period: the mean of the days' sleep, over the days that have some. */
function sleepPeriod(days: SleepDay[], from: string, to: string): SleepStatistic {
  const totals = days.filter((d) => d.date >= from && d.date <= to && d.total !== null).map((d) => d.total as number)
  return { sleep_time: totals.length ? totals.reduce((a, b) => a + b, 0) / totals.length / 1000 : null }
}

/**
 * Statistics over the user's calendar days: the measurement repository's aggregates joined with the
 * journal's day moods and check-in counts (each read through its own domain's repository).
 */
export function createStatisticsRepository(db: Db) {
  const measurements = createMeasurementRepository(db)
  const sleep = createSleepRepository(db)
  const users = createUserRepository(db)
  return {
    /** Every day fromDate..toDate (inclusive) in the user's zone. */
    async daily(userId: string, fromDate: string, toDate: string, timeZone?: string): Promise<DailyStatistics[]> {
      const tz = timeZone ?? (await users.timeZone(userId))
      const [rows, journal, nights] = await Promise.all([
        measurements.daily(userId, fromDate, toDate, tz),
        journalDays(db, userId, fromDate, toDate, tz),
        sleep.daily(userId, fromDate, toDate, tz),
      ])
      const sleepOf = new Map(nights.map((n) => [n.date, n.total === null ? null : n.total / 1000]))
      return rows.map((r) => ({
        ...r,
        sleep_time: sleepOf.get(r.date) ?? null,
        ...(journal.get(r.date) ?? NO_JOURNAL),
      }))
    },

    /** Two periods of local days; mood is the mean of the days' moods, checkin_count a total. */
    async periods(
      userId: string,
      tz: string,
      current: { from: string; to: string },
      previous: { from: string; to: string },
    ): Promise<Record<'current' | 'previous', PeriodStatistics>> {
      const [values, journal, nights] = await Promise.all([
        measurements.periods(userId, tz, current, previous),
        journalDays(db, userId, previous.from, current.to, tz),
        sleep.daily(userId, previous.from, current.to, tz),
      ])
      return {
        current: {
          ...values.current,
          ...sleepPeriod(nights, current.from, current.to),
          ...journalPeriod(journal, current.from, current.to),
        },
        previous: {
          ...values.previous,
          ...sleepPeriod(nights, previous.from, previous.to),
          ...journalPeriod(journal, previous.from, previous.to),
        },
      }
    },
  }
}

export type StatisticsRepository = ReturnType<typeof createStatisticsRepository>
