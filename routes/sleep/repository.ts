import type { Db } from '../../db/client.ts'
import { addDays, todayIn } from '../journal/zone.ts'
import { createMeasurementRepository } from '../measurement/repository.ts'
import { createUserRepository } from '../user/repository.ts'
import { type SleepSessionJson, toSessionJson } from './schemas.ts'
import { SLEEP_STAGE_MAX_MINUTES, type SleepDay, type SleepSession, deriveSessions, sleepDays } from './sessions.ts'

/** The vital signs averaged over a session, read from the measurement repository's minute rollups. */
export interface SessionVitals {
  heart_rate_avg: number | null
  heart_rate_lowest: number | null
  hrv_rmssd_avg: number | null
  respiratory_rate_avg: number | null
}

/** Days of sessions derived per step of a page of GET /v1/sleep. */
const PAGE_STEP_DAYS = 31

/** Midnight starting a local day, as an instant. */
function localMidnight(day: string, timeZone: string): Date {
  // The offset of the zone at noon UTC of that day, then corrected once for a DST change in between.
  const guess = Date.parse(`${day}T00:00:00Z`)
  const offsetAt = (ms: number) => {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(ms))
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value)
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - ms
  }
  let at = guess - offsetAt(guess)
  at = guess - offsetAt(at)
  return new Date(at)
}

function daysBetween(fromDate: string, toDate: string): string[] {
  const out: string[] = []
  for (let d = fromDate; d <= toDate; d = addDays(d, 1)) out.push(d)
  return out
}

/**
 * Sleep, derived on every read from the sleep_stage samples (through the measurement repository, never
 * its tables): sessions and days are not stored, so there is nothing to bring up to date when samples
 * arrive late or are deleted. A range of days reads the stage samples from the day before `from` (a night
 * ending on `from` began then) to two days after `to` (the sample ending the last stage).
 */
export function createSleepRepository(db: Db) {
  const measurements = createMeasurementRepository(db)
  const users = createUserRepository(db)

  async function sessions(userId: string, fromDate: string, toDate: string, timeZone: string): Promise<SleepSession[]> {
    const intervals = await measurements.stateIntervals(userId, {
      type: 'sleep_stage',
      from: localMidnight(addDays(fromDate, -1), timeZone),
      to: localMidnight(addDays(toDate, 2), timeZone),
      maxHoldMinutes: SLEEP_STAGE_MAX_MINUTES,
    })
    const all = deriveSessions(
      intervals.map((i) => ({
        deviceId: i.deviceId,
        stage: i.value,
        start: i.start,
        end: i.end,
        lastSample: i.lastSample,
      })),
      timeZone,
      userId,
    )
    return all.filter((s) => s.date >= fromDate && s.date <= toDate)
  }

  return {
    /** The sessions dated fromDate..toDate (local days, inclusive), in (start, id) order. */
    sessions,

    /**
     * Up to `count` sessions dated fromDate..toDate after the keyset `after` (start, id), in (start, id)
     * order. Derived in steps of PAGE_STEP_DAYS days from the cursor's day on, so a page reads about as many
     * nights as it answers, however long the range. A session after the cursor starts after it and so
     * ends on the cursor's local day or later.
     */
    async sessionsAfter(
      userId: string,
      q: { from: string; to: string; timeZone: string; after?: { at: Date; id: string }; count: number },
    ): Promise<SleepSession[]> {
      const out: SleepSession[] = []
      const afterMs = q.after?.at.getTime()
      let from = q.from
      if (q.after) {
        const cursorDay = todayIn(q.timeZone, q.after.at)
        if (cursorDay > from) from = cursorDay
      }
      for (; from <= q.to && out.length < q.count; from = addDays(from, PAGE_STEP_DAYS)) {
        // Skip the nights without samples: a session holding the next sample ends on its local day or later.
        const next = await measurements.nextSampleAt(
          userId,
          'sleep_stage',
          localMidnight(addDays(from, -1), q.timeZone),
        )
        if (next === null) break
        const nextDay = todayIn(q.timeZone, new Date(next))
        if (nextDay > from) from = nextDay
        if (from > q.to) break
        const to = addDays(from, PAGE_STEP_DAYS - 1)
        for (const x of await sessions(userId, from, to < q.to ? to : q.to, q.timeZone)) {
          if (afterMs !== undefined && !(x.start > afterMs || (x.start === afterMs && x.id > (q.after?.id ?? ''))))
            continue
          out.push(x)
        }
      }
      return out.slice(0, q.count)
    },

    /** Heart rate, HRV and respiratory rate over each session's window, in the sessions' order. */
    async vitals(userId: string, list: SleepSession[]): Promise<SessionVitals[]> {
      const stats = await measurements.windowMinuteStats(
        userId,
        ['heart_rate', 'hrv_rmssd', 'respiratory_rate'],
        list.map((s) => ({ start: s.start, end: s.end })),
      )
      return stats.map((s) => ({
        heart_rate_avg: s.heart_rate?.avg ?? null,
        heart_rate_lowest: s.heart_rate?.lowest_minute ?? null,
        hrv_rmssd_avg: s.hrv_rmssd?.avg ?? null,
        respiratory_rate_avg: s.respiratory_rate?.avg ?? null,
      }))
    },

    /** Every day fromDate..toDate with its sleep; the one definition the statistics and insights read. */
    async daily(userId: string, fromDate: string, toDate: string, timeZone: string): Promise<SleepDay[]> {
      return sleepDays(await sessions(userId, fromDate, toDate, timeZone), daysBetween(fromDate, toDate))
    },

    /** The owner's goal (seconds), from the profile. */
    async goalOf(userId: string): Promise<number> {
      return (await users.findById(userId))?.sleepTimeGoal ?? 0
    },
  }
}

/** Days of sessions derived per step of the export. */
const EXPORT_STEP_DAYS = 60

/**
 * Every sleep session of a user for the account export, as GET /v1/sleep answers them, oldest first.
 * Derived in steps of EXPORT_STEP_DAYS days from the first to the last sleep_stage sample, so memory
 * holds one step's sessions at a time.
 */
export async function* exportRows(db: Db, userId: string): AsyncGenerator<SleepSessionJson> {
  const repo = createSleepRepository(db)
  const extent = await createMeasurementRepository(db).extent(userId, 'sleep_stage')
  if (!extent) return
  const timeZone = await createUserRepository(db).timeZone(userId)
  // A session is dated by its end, which is after its first sample and at most a day after the last one.
  const first = todayIn(timeZone, new Date(extent.first))
  const last = todayIn(timeZone, new Date(extent.last + 86_400_000))
  for (let from = first; from <= last; from = addDays(from, EXPORT_STEP_DAYS)) {
    const to = addDays(from, EXPORT_STEP_DAYS - 1)
    const list = await repo.sessions(userId, from, to < last ? to : last, timeZone)
    const vitals = await repo.vitals(userId, list)
    for (const [i, x] of list.entries()) yield toSessionJson(x, vitals[i])
  }
}

export type SleepRepository = ReturnType<typeof createSleepRepository>
