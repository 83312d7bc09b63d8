import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest, stats } from '../helpers/measurement.ts'

// The 15-minute rollup answers days, hours and resting heart rate exactly in every zone: the expected values are
// computed here from the samples, with the zone rules of Intl (not of the database), across DST changes and in
// zones 30 and 45 minutes off the hour.

const MINUTE = 60_000

/** A deterministic pseudo-random sequence (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function localDate(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(
    new Date(ms),
  )
}

/** Heart rate over [from, from + hours): bursts of 1 Hz and sparse stretches, gaps, a few very low minutes. */
function heartRate(from: number, hours: number, seed: number): Sample[] {
  const next = random(seed)
  const out: Sample[] = []
  for (let at = from; at < from + hours * 3600_000; ) {
    const mode = next()
    if (mode < 0.1) {
      at += Math.floor(next() * 40) * MINUTE // a gap of up to 40 minutes
      continue
    }
    const step = mode < 0.6 ? 1000 : Math.floor(next() * 150_000) + 5000
    const value = Math.round(45 + next() * 60 + (next() < 0.01 ? -20 : 0))
    out.push({ type: 'heart_rate', timestamp: new Date(at).toISOString(), value })
    at += step
  }
  return out
}

/** Resting heart rate per local day as the API defines it: the lowest mean of a UTC 5-minute window with samples in 3+ minutes. */
function expectedDays(samples: Sample[], timeZone: string) {
  const windows = new Map<number, { values: number[]; minutes: Set<number> }>()
  const days = new Map<string, number[]>()
  for (const s of samples) {
    const at = Date.parse(s.timestamp)
    const w = Math.floor(at / (5 * MINUTE)) * 5 * MINUTE
    const win = windows.get(w) ?? { values: [], minutes: new Set() }
    win.values.push(s.value)
    win.minutes.add(Math.floor(at / MINUTE))
    windows.set(w, win)
    const day = localDate(at, timeZone)
    days.set(day, [...(days.get(day) ?? []), s.value])
  }
  const resting = new Map<string, number>()
  for (const [w, win] of windows) {
    if (win.minutes.size < 3) continue
    const mean = win.values.reduce((a, b) => a + b, 0) / win.values.length
    const day = localDate(w, timeZone)
    resting.set(day, Math.min(resting.get(day) ?? Number.POSITIVE_INFINITY, mean))
  }
  return { days, resting }
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 1e6) / 1e6)

for (const [timeZone, from, seed] of [
  // Chatham Islands, +12:45 / +13:45: DST ends on Sunday 7 April 2024 at 03:45 local.
  ['Pacific/Chatham', '2024-04-04T12:00:00Z', 1],
  // Newfoundland, -03:30 / -02:30: DST starts on Sunday 10 March 2024 at 02:00 local.
  ['America/St_Johns', '2024-03-08T12:00:00Z', 2],
  // Nepal, +05:45, no DST.
  ['Asia/Kathmandu', '2024-06-01T00:00:00Z', 3],
  // Lord Howe Island, +10:30 / +11: a DST change of 30 minutes on 7 April 2024 at 02:00 local.
  ['Australia/Lord_Howe', '2024-04-04T12:00:00Z', 4],
] as const) {
  t.test(`days, hours and resting heart rate in ${timeZone}`, async (t) => {
    const app = await buildTestApp(t)
    const user = await userWithToken(app, { timeZone })
    const samples = heartRate(Date.parse(from), 96, seed)
    for (let i = 0; i < samples.length; i += 10_000) await ingest(app, user.headers, samples.slice(i, i + 10_000))
    const { days, resting } = expectedDays(samples, timeZone)
    const dates = [...days.keys()].sort()
    t.ok(dates.length >= 4, 'the series spans several local days')

    const daily = await user.call('GET', `/v1/statistics/daily?from=${dates[0]}&to=${dates[dates.length - 1]}`)
    t.equal(daily.status, 200)
    t.same(
      daily.body.data.map((d: Record<string, number | null>) => ({
        date: d.date,
        resting: round(d.resting_heart_rate),
        avg: round(d.heart_rate_avg),
        min: d.heart_rate_min,
        max: d.heart_rate_max,
      })),
      dates.map((date) => {
        const s = stats(days.get(date) ?? [])
        return { date, resting: round(resting.get(date) ?? null), avg: round(s.avg), min: s.min, max: s.max }
      }),
      'daily statistics equal the values computed here',
    )

    // Day buckets of the aggregate, over a range off the quarter-hour at both ends.
    const rangeFrom = Date.parse(from) + 7 * MINUTE + 1234
    const rangeTo = Date.parse(from) + 95 * 3600_000 + 3 * MINUTE + 17
    const inRange = samples.filter((s) => Date.parse(s.timestamp) >= rangeFrom && Date.parse(s.timestamp) < rangeTo)
    const perDay = new Map<string, number[]>()
    for (const s of inRange) {
      const day = localDate(Date.parse(s.timestamp), timeZone)
      perDay.set(day, [...(perDay.get(day) ?? []), s.value])
    }
    const range = `from=${new Date(rangeFrom).toISOString()}&to=${new Date(rangeTo).toISOString()}`
    const agg = await user.call('GET', `/v1/measurements/aggregate?type=heart_rate&bucket=1d&${range}`)
    t.equal(agg.status, 200)
    t.same(
      agg.body.data.map((b: Record<string, number | string>) => ({
        date: b.date,
        count: b.count,
        avg: round(b.avg as number),
        min: b.min,
        max: b.max,
      })),
      [...perDay.keys()].sort().map((date) => {
        const s = stats(perDay.get(date) ?? [])
        return { date, count: s.count, avg: round(s.avg), min: s.min, max: s.max }
      }),
      '1d buckets equal the values computed here',
    )

    // Local hours: a bucket starts where the local minute-of-hour is 0.
    const perHour = new Map<number, number[]>()
    const minuteOfHour = (ms: number) =>
      Number(new Intl.DateTimeFormat('en-GB', { timeZone, minute: '2-digit' }).format(new Date(ms)))
    for (const s of inRange) {
      const at = Date.parse(s.timestamp)
      const m = Math.floor(at / MINUTE) * MINUTE
      const start = m - minuteOfHour(m) * MINUTE
      perHour.set(start, [...(perHour.get(start) ?? []), s.value])
    }
    const hours = await user.call('GET', `/v1/measurements/aggregate?type=heart_rate&bucket=1h&${range}`)
    t.equal(hours.status, 200)
    t.same(
      hours.body.data.map((b: Record<string, number | string>) => ({ start: b.start, count: b.count, min: b.min })),
      [...perHour.keys()]
        .sort((a, b) => a - b)
        .map((start) => ({
          start: new Date(start).toISOString(),
          count: perHour.get(start)?.length,
          min: Math.min(...(perHour.get(start) ?? [])),
        })),
      '1h buckets equal the values computed here',
    )
  })
}
