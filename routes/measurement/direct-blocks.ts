import { type SQL, sql } from 'drizzle-orm'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { decodeBlock } from './block-codec.ts'
import { HOUR_MS, type StoredSample, encodeSeriesHour, floorHour } from './blocks.ts'

/**
 * Ingest straight into blocks (issue 23's stretch): the samples of a batch in an hour that is already closed
 * (it ended before `closedBefore`, the point compaction would move it at: MEASUREMENT_COMPACTION_DELAY_S ago)
 * are encoded here into the hour's block, one measurement_blocks row where the row table writes 3,600 rows
 * and 3,600 index entries, and their quarter-hours of the rollup are computed here too. A phone syncing a
 * backlog sends mostly such hours.
 *
 * Under the user's exclusive lock (nothing else writes the user's samples meanwhile), the batch's hours are
 * looked at first (`planDirectBlocks`): a closed hour without rows of the device becomes a new block, or is
 * merged into the block already there (the rest of an hour a previous batch began; a re-sent sample is a
 * duplicate); a closed hour that holds rows (live uploads not compacted yet) and every open hour take the row
 * path, without the samples blocks hold. Then one statement writes rows, blocks, rollup and change log.
 */

interface Sample {
  type: string
  at: number
  value: number
}

/** One closed (type, hour) of a batch, in batch order (planDirectBlocks keeps the first sample of a timestamp, as the row path does). */
interface HourGroup {
  type: string
  hour: number
  samples: Sample[]
}

const QUARTER_MS = 15 * 60_000
const MINUTE_MS = 60_000
/** The rollup's 5-minute windows of a quarter-hour (repository.ts WINDOWS). */
const WINDOW_COUNT = 3

const fromMs = (column: string) => sql.raw(`timestamptz 'epoch' + ${column} * interval '1 millisecond'`)

/** The 17 rollup values of one (type, quarter-hour), as rollupOf computes them in SQL. */
/** One quarter-hour of the rollup computed here; `ord` names the upload of a group (repository.ts). */
export interface QuarterRollup {
  ord?: number
  type: string
  quarter: number
  count: number
  sum: number
  min: number
  max: number
  windows: Array<{ count: number; sum: number; min: number | null; max: number | null }>
  mask: number
}

/** A batch split at `closedBefore`: samples of open hours, and the closed hours' groups. */
export interface ClosedSplit<S extends Sample> {
  open: S[]
  groups: HourGroup[]
}

export function splitClosedHours<S extends Sample>(batch: S[], closedBefore: number): ClosedSplit<S> {
  const groups = new Map<string, HourGroup>()
  const open: S[] = []
  for (const s of batch) {
    const hour = floorHour(s.at)
    if (hour + HOUR_MS > closedBefore) {
      open.push(s)
      continue
    }
    const key = `${s.type} ${hour}`
    let g = groups.get(key)
    if (!g) {
      g = { type: s.type, hour, samples: [] }
      groups.set(key, g)
    }
    g.samples.push(s)
  }
  return { open, groups: [...groups.values()] }
}

export interface DirectPlan<S extends Sample> {
  /** Samples for the row path: not held by any block (the row table's key skips those it holds). */
  rows: S[]
  /** Blocks to write whole (new, or an existing one with new samples merged in). */
  blocks: Array<{ type: string; hour: number; count: number; first: number; last: number; hex: string }>
  /** Rollup of the samples the blocks gain. */
  quarters: QuarterRollup[]
  /** Samples the blocks gain (stored by this batch). */
  accepted: number
}

interface BlockRow {
  type: string
  hour_ms: string | number
  data: Uint8Array
}

/**
 * Looks at the batch's hours (call under the user's exclusive lock) and decides where each sample goes.
 * Samples a block holds already (same type and timestamp, this device) are duplicates wherever they are.
 */
export async function planDirectBlocks<S extends Sample>(
  tx: DbOrTx,
  userId: string,
  deviceId: string,
  split: ClosedSplit<S>,
): Promise<DirectPlan<S>> {
  const keys = new Map<string, { type: string; hour: number }>()
  for (const s of split.open) keys.set(`${s.type} ${floorHour(s.at)}`, { type: s.type, hour: floorHour(s.at) })
  for (const g of split.groups) keys.set(`${g.type} ${g.hour}`, g)
  const all = [...keys.values()]
  const existing = await queryRows<BlockRow>(
    tx,
    sql`
    select b.type, (extract(epoch from b.hour) * 1000)::int8 as hour_ms, b.data
      from unnest(${sql.param(all.map((k) => k.type))}::text[], ${sql.param(all.map((k) => k.hour))}::int8[])
           as k(type, hour_ms)
      join measurement_blocks b on b.user_id = ${userId} and b.type = k.type and b.device_id = ${deviceId}
                               and b.hour = ${fromMs('k.hour_ms')}`,
  )
  const withRows = new Set(
    (
      await queryRows<{ type: string; hour_ms: string | number }>(
        tx,
        sql`
        select k.type, k.hour_ms
          from unnest(${sql.param(split.groups.map((g) => g.type))}::text[],
                      ${sql.param(split.groups.map((g) => g.hour))}::int8[]) as k(type, hour_ms)
         where exists (select 1 from measurements m
                        where m.user_id = ${userId} and m.type = k.type and m.device_id = ${deviceId}
                          and m.measured_at >= ${fromMs('k.hour_ms')}
                          and m.measured_at < ${fromMs(`(k.hour_ms + ${HOUR_MS})`)})`,
      )
    ).map((r) => `${r.type} ${Number(r.hour_ms)}`),
  )
  const blockOf = new Map<string, { times: number[]; values: number[] }>()
  for (const b of existing) blockOf.set(`${b.type} ${Number(b.hour_ms)}`, decodeBlock(b.data))
  // The timestamps each (type, hour)'s block holds, made once per key when first asked for.
  const heldByHour = new Map<string, Set<number>>()
  const held = (key: string) => {
    let h = heldByHour.get(key)
    if (!h) {
      h = new Set(blockOf.get(key)?.times ?? [])
      heldByHour.set(key, h)
    }
    return h
  }
  const notHeld = (s: S) => !held(`${s.type} ${floorHour(s.at)}`).has(s.at)

  const plan: DirectPlan<S> = { rows: [], blocks: [], quarters: [], accepted: 0 }
  for (const s of split.open) if (notHeld(s)) plan.rows.push(s)
  for (const g of split.groups) {
    const key = `${g.type} ${g.hour}`
    if (withRows.has(key)) {
      for (const s of g.samples as S[]) if (notHeld(s)) plan.rows.push(s)
      continue
    }
    const block = blockOf.get(key)
    // This hour is only this group's: its set also takes the batch's own repeats.
    const seen = held(key)
    const fresh: Sample[] = []
    for (const s of g.samples) {
      if (seen.has(s.at)) continue
      seen.add(s.at)
      fresh.push(s)
    }
    if (fresh.length === 0) continue
    const stored: StoredSample[] = fresh.map((s) => ({
      type: g.type as StoredSample['type'],
      deviceId,
      at: s.at,
      value: s.value,
    }))
    if (block) {
      for (let i = 0; i < block.times.length; i++) {
        stored.push({ type: g.type as StoredSample['type'], deviceId, at: block.times[i], value: block.values[i] })
      }
    }
    const b = encodeSeriesHour(stored)
    plan.blocks.push({
      type: g.type,
      hour: g.hour,
      count: b.count,
      first: b.first,
      last: b.last,
      hex: b.data.toString('hex'),
    })
    plan.quarters.push(...rollupOfSamples(fresh))
    plan.accepted += fresh.length
  }
  // Key order, as the row path's rollup upsert: concurrent upserts lock quarter rows in the same order.
  plan.quarters.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.quarter - b.quarter))
  return plan
}

/**
 * The rollup rows of samples (no two of one type and time: the stored ones), what the database's aggregate
 * over them would give (sums added in the samples' order), by type and quarter-hour in first-seen order.
 */
export function rollupOfSamples(samples: Sample[], ord?: number): QuarterRollup[] {
  const byQuarter = new Map<string, QuarterRollup>()
  let q: QuarterRollup | undefined
  for (const s of samples) {
    const quarter = Math.floor(s.at / QUARTER_MS) * QUARTER_MS
    // Samples come mostly in time order: the previous sample's quarter-hour first, the map only on a change.
    if (!q || q.quarter !== quarter || q.type !== s.type) {
      const key = `${s.type} ${quarter}`
      q = byQuarter.get(key)
      if (!q) {
        q = {
          ...(ord === undefined ? {} : { ord }),
          type: s.type,
          quarter,
          count: 0,
          sum: 0,
          min: s.value,
          max: s.value,
          windows: Array.from({ length: WINDOW_COUNT }, () => ({ count: 0, sum: 0, min: null, max: null })),
          mask: 0,
        }
        byQuarter.set(key, q)
      }
    }
    const minute = Math.floor((s.at - quarter) / MINUTE_MS)
    const w = q.windows[Math.floor(minute / 5)]
    q.count++
    q.sum += s.value
    if (s.value < q.min) q.min = s.value
    if (s.value > q.max) q.max = s.value
    w.count++
    w.sum += s.value
    if (w.min === null || s.value < w.min) w.min = s.value
    if (w.max === null || s.value > w.max) w.max = s.value
    q.mask |= 1 << minute
  }
  return [...byQuarter.values()]
}

/** The upsert of the plan's blocks (a data-modifying WITH item): new ones, or existing ones rewritten whole. */
export function upsertBlocks(userId: string, deviceId: string, plan: DirectPlan<Sample>): SQL {
  const b = plan.blocks
  return sql`
    insert into measurement_blocks (user_id, type, hour, device_id, count, first_at, last_at, data)
    select ${userId}, type, ${fromMs('hour_ms')}, ${deviceId}, count, ${fromMs('first_ms')}, ${fromMs('last_ms')},
           decode(hex, 'hex')
      from unnest(${sql.param(b.map((x) => x.type))}::text[], ${sql.param(b.map((x) => x.hour))}::int8[],
                  ${sql.param(b.map((x) => x.count))}::int4[], ${sql.param(b.map((x) => x.first))}::int8[],
                  ${sql.param(b.map((x) => x.last))}::int8[], ${sql.param(b.map((x) => x.hex))}::text[])
           as b(type, hour_ms, count, first_ms, last_ms, hex)
    on conflict (user_id, type, hour, device_id) do update
      set count = excluded.count, first_at = excluded.first_at, last_at = excluded.last_at, data = excluded.data`
}

/**
 * Rollup rows computed here, as a SELECT in ROLLUP_COLUMNS order (after user_id, type, quarter: count, sum,
 * min, max, then count, sum, min and max of each 5-minute window, then minute_mask), in key order. `userId`
 * null: rows of an upload group, each row's user the `up` item's user_id of its `ord` (repository.ts).
 */
export function rollupRows(userId: string | null, q: QuarterRollup[]): SQL {
  const col = <T>(f: (r: QuarterRollup) => T, type: string) => sql`${sql.param(q.map(f))}::${sql.raw(type)}[]`
  const windowCols = Array.from({ length: WINDOW_COUNT }, (_, i) => [
    col((r) => r.windows[i].count, 'int4'),
    col((r) => r.windows[i].sum, 'float8'),
    col((r) => r.windows[i].min, 'float8'),
    col((r) => r.windows[i].max, 'float8'),
  ]).flat()
  const names = Array.from({ length: WINDOW_COUNT }, (_, i) => [`c${i}`, `s${i}`, `mi${i}`, `ma${i}`]).flat()
  const grouped = userId === null
  return sql`
    select ${grouped ? sql`up.user_id` : sql`${userId}::uuid`}, r.type, ${fromMs('r.quarter_ms')}, r.count, r.sum,
           r.min, r.max, ${sql.raw(names.map((n) => `r.${n}`).join(', '))}, r.mask
      from unnest(${col((r) => r.type, 'text')}, ${col((r) => r.quarter, 'int8')}, ${col((r) => r.count, 'int4')},
                  ${col((r) => r.sum, 'float8')}, ${col((r) => r.min, 'float8')}, ${col((r) => r.max, 'float8')},
                  ${sql.join(windowCols, sql`, `)}, ${col((r) => r.mask, 'int4')}, ${col((r) => r.ord ?? 0, 'int4')})
           as r(type, quarter_ms, count, sum, min, max, ${sql.raw(names.join(', '))}, mask, ord)
      ${grouped ? sql`join up on up.ord = r.ord` : sql``}
     order by ${grouped ? sql`up.user_id, ` : sql``}r.type, r.quarter_ms`
}
