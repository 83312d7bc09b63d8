import { errors } from '../../plugins/errors.ts'

/** Today's calendar day (`YYYY-MM-DD`) in an IANA time zone. */
export function todayIn(timeZone: string, now = new Date()): string {
  // en-CA formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
}

/** `YYYY-MM-DD` plus n days (n may be negative); pure date arithmetic, no zone involved. */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + n)
  return d.toISOString().slice(0, 10)
}

// Clocks of phones drift: a few minutes ahead is tolerated, anything later is "in the future".
export const FUTURE_SKEW_MS = 5 * 60_000

/** Throws `400 validation_failed` on `field` when `at` lies in the future. */
export function refuseFuture(field: string, at: Date | null | undefined) {
  if (at && at.getTime() > Date.now() + FUTURE_SKEW_MS) {
    throw errors.validation([{ field, problem: 'must not be in the future' }])
  }
}
