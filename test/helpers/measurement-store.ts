import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { queryRows } from '../../db/client.ts'
import type { userWithToken } from './fixtures.ts'
import { type Sample, series } from './measurement.ts'

// The store's test data and reads (issue 23): compaction.test.ts and direct-blocks.test.ts compare every read a
// client can make over the same samples stored as rows and as blocks.

const HOUR = 3600_000
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)

export interface Stored extends Sample {
  device: string | null
}

/** 3 hours of 1 Hz heart rate on two devices (values not uniform within a minute), a gap, steps, stages. */
export function dataset(T0: number) {
  const hrA = series('heart_rate', T0, 3 * 3600, (i) => 50 + ((i * 7919) % 97) + (i % 3) * 0.5).filter(
    (_, i) => i < 4000 || i > 4500,
  )
  const hrB = series('heart_rate', T0 + 250, 3600, (i) => 60 + (i % 7), 3000)
  const temps = series('skin_temperature', T0 + 17, 500, (i) => 33 + ((i * 37) % 300) / 100 + 1e-9 * i, 20_000)
  const steps = series('steps', T0, 180, (i) => i % 11, 60_000)
  // A night of sleep stages every 30 s (stage changes every 20 minutes), ending awake.
  const stages = series(
    'sleep_stage',
    T0 - 2 * 3600_000,
    4 * 120 + 1,
    (i) => (i === 480 ? 0 : 1 + (Math.floor(i / 40) % 3)),
    30_000,
  )
  return { hrA, hrB, temps, steps, stages }
}

export type User = Awaited<ReturnType<typeof userWithToken>>

export async function everySample(u: User, type: string, limit: number) {
  const out: Stored[] = []
  let cursor: string | null = null
  do {
    const page = await u.call(
      'GET',
      `/v1/measurements?type=${type}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    )
    if (page.status !== 200) throw new Error(JSON.stringify(page.body))
    for (const s of page.body.data)
      out.push({ type: s.type, timestamp: s.timestamp, value: s.value, device: s.device_id })
    cursor = page.body.next_cursor
  } while (cursor)
  return out
}

export const rounded = (x: unknown) =>
  JSON.parse(JSON.stringify(x, (_, v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v)))

export const byKey = (a: Stored, b: Stored) =>
  Date.parse(a.timestamp) - Date.parse(b.timestamp) || ((a.device ?? '') < (b.device ?? '') ? -1 : 1)

export async function counts(app: FastifyInstance, userId: string) {
  const [row] = await queryRows<{ rows: number; blocks: number; in_blocks: number }>(
    app.db,
    sql`select (select count(*)::int from measurements where user_id = ${userId}) as rows,
               (select count(*)::int from measurement_blocks where user_id = ${userId}) as blocks,
               (select coalesce(sum(count), 0)::int from measurement_blocks where user_id = ${userId}) as in_blocks`,
  )
  return row
}

/** Every read a client can make over the dataset's window, to compare before and after compaction. */
export async function snapshot(u: User, T0: number) {
  const days = `from=${day(T0 - 86_400_000)}&to=${day(T0 + 86_400_000)}`
  const from = new Date(T0 + 17_500).toISOString()
  const to = new Date(T0 + 3 * HOUR - 42_250).toISOString()
  const out: Record<string, unknown> = {}
  for (const bucket of ['1m', '5m', '15m', '1h', '1d']) {
    for (const type of ['heart_rate', 'skin_temperature', 'steps']) {
      const res = await u.call('GET', `/v1/measurements/aggregate?type=${type}&bucket=${bucket}&from=${from}&to=${to}`)
      out[`${type} ${bucket}`] = res.body.data.map((b: Record<string, number>) => ({
        ...b,
        avg: Math.round(b.avg * 1e6) / 1e6,
        sum: Math.round(b.sum * 1e6) / 1e6,
      }))
    }
  }
  out.sleep = (await u.call('GET', `/v1/sleep?${days}`)).body
  out.sleepDaily = (await u.call('GET', `/v1/sleep/daily?${days}`)).body
  out.daily = (await u.call('GET', `/v1/statistics/daily?${days}`)).body.data.map(
    (d: Record<string, number | string | null>) =>
      Object.fromEntries(Object.entries(d).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v])),
  )
  return out
}

/** Every column of the user's quarter-hours of the rollup, in key order. */
export const quarters = (app: FastifyInstance, userId: string) =>
  queryRows<Record<string, unknown>>(
    app.db,
    sql`select type, quarter::text, count, sum, min, max, w0_count, w0_sum, w0_min, w0_max, w1_count, w1_sum,
               w1_min, w1_max, w2_count, w2_sum, w2_min, w2_max, minute_mask
          from measurement_quarters where user_id = ${userId} order by type, quarter`,
  )
