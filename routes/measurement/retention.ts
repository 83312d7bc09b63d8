import { sql } from 'drizzle-orm'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { type MeasurementTypeName, TYPE_NAMES } from '../../db/schema/measurement-catalogue.ts'
import { floorHour } from './blocks.ts'
import { PARTITIONED_TABLES, dropPartition, partitionMonths } from './partitions.ts'

/**
 * Per-type retention of raw samples (MEASUREMENT_RAW_RETENTION, off by default): past N days a type keeps only
 * its 15-minute rollup, so aggregates, statistics and insights over old days still answer, raw pages and
 * 1m buckets of those days no longer do. Raw samples older than the horizon are deleted (blocks and rows);
 * when every type has a retention, months wholly past the shortest horizon lose their partitions, which is
 * the cheap way (no dead tuples, no vacuum).
 *
 * Uploads of samples older than their type's horizon are ignored (counted as duplicates): once the raw samples
 * are gone a re-sent one cannot be told from a new one, and adding it again would count it twice in the rollup.
 */
export type RawRetention = Partial<Record<MeasurementTypeName, number>>

/** "heart_rate=30,hrv_rmssd=90" (days), "*=30" for every type not listed; '' = off. */
export function parseRawRetention(spec: string): RawRetention {
  const out: RawRetention = {}
  let all: number | undefined
  for (const part of spec.split(',').map((p) => p.trim())) {
    if (!part) continue
    const [type, days] = part.split('=')
    const n = Number(days)
    if (!Number.isInteger(n) || n < 1) throw new Error(`MEASUREMENT_RAW_RETENTION: ${part} needs whole days >= 1`)
    if (type === '*') all = n
    else if ((TYPE_NAMES as readonly string[]).includes(type)) out[type as MeasurementTypeName] = n
    else throw new Error(`MEASUREMENT_RAW_RETENTION: unknown type ${type}`)
  }
  if (all !== undefined) for (const t of TYPE_NAMES) out[t] ??= all
  return out
}

/** The instant (ms, an hour boundary) before which raw samples of `type` are no longer kept; null = forever. */
export function rawHorizon(retention: RawRetention, type: MeasurementTypeName, now = Date.now()): number | null {
  const days = retention[type]
  return days === undefined ? null : floorHour(now - days * 86_400_000)
}

/** When every type has a retention: the shortest horizon (older months can go whole); else null. */
export function partitionHorizon(retention: RawRetention, now = Date.now()): number | null {
  let horizon: number | null = Number.POSITIVE_INFINITY
  for (const t of TYPE_NAMES) {
    const h = rawHorizon(retention, t, now)
    if (h === null) return null
    horizon = Math.min(horizon, h)
  }
  return horizon
}

const ts = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`

export async function applyRawRetention(
  db: DbOrTx,
  retention: RawRetention,
  now = Date.now(),
): Promise<{ samples: number; droppedPartitions: number }> {
  let samples = 0
  let droppedPartitions = 0
  const whole = partitionHorizon(retention, now)
  if (whole !== null) {
    for (const table of PARTITIONED_TABLES) {
      for (const month of await partitionMonths(db, table)) {
        const end = Date.UTC(new Date(month).getUTCFullYear(), new Date(month).getUTCMonth() + 1, 1)
        if (end > whole) continue
        await dropPartition(db, table, month)
        droppedPartitions++
      }
    }
  }
  for (const type of TYPE_NAMES) {
    const horizon = rawHorizon(retention, type, now)
    if (horizon === null) continue
    // The partition key in the condition: only partitions that can hold such rows are scanned.
    const [b] = await queryRows<{ n: number }>(
      db,
      sql`with d as (delete from measurement_blocks where type = ${type} and hour < ${ts(horizon)} returning count)
          select coalesce(sum(count), 0)::int as n from d`,
    )
    const [r] = await queryRows<{ n: number }>(
      db,
      sql`with d as (delete from measurements where type = ${type} and measured_at < ${ts(horizon)} returning 1)
          select count(*)::int as n from d`,
    )
    samples += (b?.n ?? 0) + (r?.n ?? 0)
  }
  return { samples, droppedPartitions }
}
