// Fixed periods of the wall clock that a test must not straddle. The rate limiters count in fixed windows
// (plugins/limits.ts and plugins/oauth-bearer.ts: start = floor(now / windowMs) * windowMs), and the insight
// rules judge "today" and "yesterday" in the user's zone when they run: a sequence that expects one count, or
// one day, fails when a boundary passes in its middle.

/** The fixed window of `windowMs` that an instant falls in, numbered as the limiters compute it. */
export const windowOf =
  (windowMs: number) =>
  (at: number): number =>
    Math.floor(at / windowMs)

/**
 * When the next boundary of `period` (a function naming the period an instant falls in: a window of
 * `windowOf`, a day in a zone) is less than `marginMs` away, waits until it has passed; afterwards the next
 * `marginMs` lie in one period (`marginMs` must be shorter than the period). The wait is at most `marginMs`
 * and happens in marginMs / (length of the period) of the runs.
 */
export async function clearOfBoundary(period: (at: number) => string | number, marginMs: number): Promise<void> {
  const current = period(Date.now())
  if (period(Date.now() + marginMs) === current) return
  // The first millisecond of the next period: period(lo) is the current one, period(hi) is not.
  let lo = Date.now()
  let hi = lo + marginMs
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (period(mid) === current) lo = mid
    else hi = mid
  }
  while (period(Date.now()) === current) await new Promise((r) => setTimeout(r, Math.max(1, hi - Date.now() + 5)))
}
