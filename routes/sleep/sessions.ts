import { createHash } from 'node:crypto'
import { SLEEP_STAGES } from '../../db/schema/measurement-catalogue.ts'
import { todayIn } from '../journal/zone.ts'

/**
 * Sleep sessions derived from sleep_stage samples. Pure: it takes the stage intervals of each device (what
 * `stateIntervals` of the measurement repository answers) and answers the sessions; nothing is stored, so a
 * late or deleted sample changes the answer of the next read and there is nothing to keep in step.
 *
 * The definitions (also written into openapi.yaml through `SLEEP_DEFINITIONS`):
 * - A stage holds from its sample until the device's next sleep_stage sample, at most
 *   SLEEP_STAGE_MAX_MINUTES: a longer silence is the watch not recording, not an unbroken stage. A device's
 *   last sample has no end yet and counts nothing (the awake sample sent on waking ends the night).
 * - Asleep is light, deep or REM; awake is stage 0; time with no stage recorded is `unrecorded`.
 * - Asleep stretches of one device less than SLEEP_EPISODE_GAP_MINUTES apart, whatever lies between them
 *   (awake, or nothing recorded), are one session. A longer gap starts a new session.
 * - A session runs from its bedtime start to its bedtime end: the awake time recorded without a break right
 *   before the first asleep stretch (at most SLEEP_EDGE_AWAKE_MAX_MINUTES) is lying in bed before falling
 *   asleep, and likewise after the last one, up to the last awake sample (what a stage does after a
 *   device's last word is a guess, and awake after waking up is not sleep to count).
 * - A session with less than SLEEP_MIN_ASLEEP_MINUTES asleep is dropped (a stray reading, not sleep).
 * - latency = sleep onset − bedtime start; efficiency = asleep ÷ (bedtime end − bedtime start).
 * - Two watches worn at once do not add up: where sessions of different devices overlap, the one with more
 *   time asleep is kept.
 * - A session belongs to the calendar day, in the user's time zone, on which it ends (a night from 23:00 to
 *   07:00 is the morning's; a DST night is as long as it really was). Of a day's sessions the one with the
 *   most time asleep is the `main` one, the others are `nap`s.
 */

export const SLEEP_STAGE_MAX_MINUTES = 60
export const SLEEP_EPISODE_GAP_MINUTES = 120
export const SLEEP_EDGE_AWAKE_MAX_MINUTES = 60
export const SLEEP_MIN_ASLEEP_MINUTES = 15

export const AWAKE = 0
/** The sleep_stage codes that count as asleep: light, deep and REM. */
export const ASLEEP_STAGES = Object.entries(SLEEP_STAGES)
  .filter(([, name]) => name !== 'awake')
  .map(([code]) => Number(code))

export const SLEEP_DEFINITIONS =
  'Derived at read time from the sleep_stage samples (nothing is stored, so late and deleted samples show on the next read). ' +
  `A stage holds from its sample until the device's next sleep_stage sample, at most ${SLEEP_STAGE_MAX_MINUTES} minutes (longer silence: not recording); a device's last sample counts nothing. ` +
  'Asleep = light, deep or REM; awake = stage 0; unrecorded = time in the session with no stage. ' +
  `Asleep stretches of one device less than ${SLEEP_EPISODE_GAP_MINUTES} minutes apart (awake or unrecorded in between) are one session; a longer gap starts a new one. ` +
  `A session starts at the awake time recorded without a break right before the first asleep stretch (at most ${SLEEP_EDGE_AWAKE_MAX_MINUTES} minutes: lying in bed awake) and ends likewise after the last one, at the last awake sample of that stretch. ` +
  `Sessions with less than ${SLEEP_MIN_ASLEEP_MINUTES} minutes asleep are dropped. ` +
  'latency = sleep_onset − start; efficiency = asleep ÷ (end − start). Where sessions of two devices overlap, the one with more time asleep is kept. ' +
  "A session is dated by the calendar day, in the user's time zone, on which it ends; of a day's sessions the one with the most time asleep is `main`, the others are `nap`. " +
  'Heart rate, HRV and respiratory rate are over the minutes that begin inside the session (start to end); heart_rate_lowest is the lowest one-minute mean.'

const MINUTE = 60_000

/** One stretch of a single stage of one device, as the measurement repository answers them (ms since the epoch). */
export interface StageInterval {
  deviceId: string
  stage: number
  start: number
  end: number
  /**
   * When the last sample merged into this interval was taken (default: `end`). After it the stage is only
   * assumed to go on; for the awake time after the final awakening that guess is not counted.
   */
  lastSample?: number
}

export interface StageDurations {
  light: number
  deep: number
  rem: number
  awake: number
}

/** A derived session; durations in milliseconds, instants in ms since the epoch. */
export interface SleepSession {
  id: string
  date: string
  kind: 'main' | 'nap'
  deviceId: string
  start: number
  end: number
  onset: number
  wake: number
  asleep: number
  unrecorded: number
  stages: StageDurations
}

const isAsleep = (stage: number) => ASLEEP_STAGES.includes(stage)

/** A UUID (version 8, RFC 9562) from the session's owner, device and sleep onset: stable across reads. */
export function sessionId(seed: string, deviceId: string, onset: number): string {
  const b = createHash('sha256').update(`${seed}\u0000${deviceId}\u0000${onset}`).digest()
  b[6] = (b[6] & 0x0f) | 0x80
  b[8] = (b[8] & 0x3f) | 0x80
  const h = b.subarray(0, 16).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** Sessions of one device's intervals (sorted by start, not overlapping), before the cross-device choice. */
function deviceSessions(intervals: StageInterval[], seed: string): Omit<SleepSession, 'date' | 'kind'>[] {
  const out: Omit<SleepSession, 'date' | 'kind'>[] = []
  const asleepIdx = intervals.flatMap((iv, i) => (isAsleep(iv.stage) ? [i] : []))
  let g = 0
  while (g < asleepIdx.length) {
    let last = g
    while (
      last + 1 < asleepIdx.length &&
      intervals[asleepIdx[last + 1]].start - intervals[asleepIdx[last]].end < SLEEP_EPISODE_GAP_MINUTES * MINUTE
    )
      last++
    const first = asleepIdx[g]
    const final = asleepIdx[last]
    const onset = intervals[first].start
    const wake = intervals[final].end
    // In bed awake before and after: awake intervals that touch, walking outwards, within the edge limit.
    let start = onset
    let lo = first
    for (let i = first - 1; i >= 0 && intervals[i].stage === AWAKE && intervals[i].end === start; i--) {
      start = intervals[i].start
      lo = i
    }
    start = Math.max(start, onset - SLEEP_EDGE_AWAKE_MAX_MINUTES * MINUTE)
    let end = wake
    let hi = final
    for (let i = final + 1; i < intervals.length && intervals[i].stage === AWAKE && intervals[i].start === end; i++) {
      end = intervals[i].end
      hi = i
    }
    // The awake sample sent on waking holds until the device's next sample, which may be hours later:
    // where nothing follows the awake stretch without a break, it ends at its last sample.
    const next = intervals[hi + 1]
    if (hi > final && !(next && next.start === end))
      end = Math.max(intervals[hi].start, intervals[hi].lastSample ?? end)
    end = Math.min(end, wake + SLEEP_EDGE_AWAKE_MAX_MINUTES * MINUTE)
    const stages: StageDurations = { light: 0, deep: 0, rem: 0, awake: 0 }
    for (const iv of intervals.slice(lo, hi + 1)) {
      const overlap = Math.min(iv.end, end) - Math.max(iv.start, start)
      if (overlap <= 0) continue
      const name = SLEEP_STAGES[iv.stage as keyof typeof SLEEP_STAGES]
      if (name) stages[name] += overlap
    }
    const asleep = stages.light + stages.deep + stages.rem
    if (asleep >= SLEEP_MIN_ASLEEP_MINUTES * MINUTE) {
      out.push({
        id: sessionId(seed, intervals[first].deviceId, onset),
        deviceId: intervals[first].deviceId,
        start,
        end,
        onset,
        wake,
        asleep,
        unrecorded: end - start - asleep - stages.awake,
        stages,
      })
    }
    g = last + 1
  }
  return out
}

/**
 * Every session in the intervals, in (start, id) order, dated in `timeZone`. `seed` (the owner's id) makes
 * the session ids of different users differ.
 */
export function deriveSessions(intervals: StageInterval[], timeZone: string, seed: string): SleepSession[] {
  const byDevice = new Map<string, StageInterval[]>()
  for (const iv of intervals) {
    const list = byDevice.get(iv.deviceId)
    if (list) list.push(iv)
    else byDevice.set(iv.deviceId, [iv])
  }
  const candidates = [...byDevice.values()].flatMap((list) =>
    deviceSessions(
      [...list].sort((a, b) => a.start - b.start),
      seed,
    ),
  )
  // Most asleep first; a session overlapping one already kept is the same sleep seen by another watch.
  candidates.sort((a, b) => b.asleep - a.asleep || a.start - b.start || (a.id < b.id ? -1 : 1))
  const kept: typeof candidates = []
  for (const c of candidates) {
    if (!kept.some((k) => c.start < k.end && k.start < c.end)) kept.push(c)
  }
  const dated = kept.map((s) => ({ ...s, date: todayIn(timeZone, new Date(s.end)), kind: 'nap' as 'main' | 'nap' }))
  const mainOf = new Map<string, (typeof dated)[number]>()
  for (const s of dated) {
    const m = mainOf.get(s.date)
    if (!m || s.asleep > m.asleep || (s.asleep === m.asleep && s.start < m.start)) mainOf.set(s.date, s)
  }
  for (const m of mainOf.values()) m.kind = 'main'
  return dated.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1))
}

export interface SleepDay {
  date: string
  /** Asleep in every session of the day, main and naps (ms); null when the day has none. */
  total: number | null
  main: SleepSession | null
  sessions: number
}

/** One entry per day fromDate..toDate (inclusive) with the sessions dated on it. */
export function sleepDays(sessions: SleepSession[], days: string[]): SleepDay[] {
  return days.map((date) => {
    const of = sessions.filter((s) => s.date === date)
    return {
      date,
      total: of.length ? of.reduce((a, s) => a + s.asleep, 0) : null,
      main: of.find((s) => s.kind === 'main') ?? null,
      sessions: of.length,
    }
  })
}
