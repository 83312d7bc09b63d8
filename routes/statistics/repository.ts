import type { Db } from '../../db/client.ts'
import {
  STATISTIC_KEYS as MEASUREMENT_KEYS,
  type DailyStatistics as MeasurementDailyStatistics,
  createMeasurementRepository,
} from '../measurement/repository.ts'
import { createUserRepository } from '../user/repository.ts'
import { type JournalDay, journalDays } from './day-mood.ts'

/** A day's statistics: the measurements' and the journal's (mood, check-ins). */
export type DailyStatistics = MeasurementDailyStatistics & JournalDay
export type StatisticKey = Exclude<keyof DailyStatistics, 'date'>
export type PeriodStatistics = Omit<DailyStatistics, 'date'> & { days_with_data: number }

export const STATISTIC_KEYS: StatisticKey[] = [...MEASUREMENT_KEYS, 'mood', 'checkin_count']

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

/**
 * Statistics over the user's calendar days: the measurement repository's aggregates joined with the
 * journal's day moods and check-in counts (each read through its own domain's repository).
 */
export function createStatisticsRepository(db: Db) {
  const measurements = createMeasurementRepository(db)
  return {
    /** Every day fromDate..toDate (inclusive) in the user's zone. */
    async daily(userId: string, fromDate: string, toDate: string, timeZone?: string): Promise<DailyStatistics[]> {
      const tz = timeZone ?? (await createUserRepository(db).timeZone(userId))
      const [rows, journal] = await Promise.all([
        measurements.daily(userId, fromDate, toDate, tz),
        journalDays(db, userId, fromDate, toDate, tz),
      ])
      return rows.map((r) => ({ ...r, ...(journal.get(r.date) ?? NO_JOURNAL) }))
    },

    /** Two periods of local days; mood is the mean of the days' moods, checkin_count a total. */
    async periods(
      userId: string,
      tz: string,
      current: { from: string; to: string },
      previous: { from: string; to: string },
    ): Promise<Record<'current' | 'previous', PeriodStatistics>> {
      const [values, journal] = await Promise.all([
        measurements.periods(userId, tz, current, previous),
        journalDays(db, userId, previous.from, current.to, tz),
      ])
      return {
        current: { ...values.current, ...journalPeriod(journal, current.from, current.to) },
        previous: { ...values.previous, ...journalPeriod(journal, previous.from, previous.to) },
      }
    },
  }
}

export type StatisticsRepository = ReturnType<typeof createStatisticsRepository>
