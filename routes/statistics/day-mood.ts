import type { Db, DbOrTx } from '../../db/client.ts'
import { createCheckinRepository } from '../checkin/repository.ts'
import { createDayFeedbackRepository } from '../day-feedback/repository.ts'

/** What the journal says about one calendar day. */
export interface JournalDay {
  /**
   * The day's mood (1..5): the day feedback's mood when the user gave one — their own verdict on the
   * whole day — otherwise the mean of that day's check-in moods; null when neither has one.
   */
  mood: number | null
  checkin_count: number
}

/**
 * The journal per calendar day of `timeZone` from `fromDate` to `toDate` (inclusive), keyed by
 * `YYYY-MM-DD`; days with neither a check-in nor a day feedback are absent. The one definition of a
 * day's mood, shared by statistics and insights.
 */
export async function journalDays(
  db: Db,
  userId: string,
  fromDate: string,
  toDate: string,
  timeZone: string,
  tx?: DbOrTx,
): Promise<Map<string, JournalDay>> {
  const [checkins, feedback] = await Promise.all([
    createCheckinRepository(db).dailyMood(userId, fromDate, toDate, timeZone, tx),
    createDayFeedbackRepository(db).moods(userId, fromDate, toDate, tx),
  ])
  const days = new Map<string, JournalDay>(
    checkins.map((c) => [c.date, { mood: c.mood_avg, checkin_count: c.checkin_count }]),
  )
  for (const f of feedback) {
    const day = days.get(f.date)
    if (!day) days.set(f.date, { mood: f.mood, checkin_count: 0 })
    else if (f.mood !== null) day.mood = f.mood
  }
  return days
}
