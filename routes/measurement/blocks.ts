import { type SQL, sql } from 'drizzle-orm'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import type { MeasurementTypeName } from '../../db/schema/measurement-catalogue.ts'
import { decodeBlock, encodeBlock } from './block-codec.ts'

/**
 * The compacted part of the measurement store (measurement_blocks): reading blocks as samples, and the
 * per-user lock that keeps blocks and the row table consistent.
 *
 * The lock: transaction-scoped advisory locks only (PgBouncer in transaction mode hands each transaction
 * any server connection, so session locks would leak). Ingest holds the user's lock shared while it checks
 * the user's blocks for re-sent samples and inserts; compaction and range deletes hold it exclusive while
 * they move or rewrite samples. Without it a compaction committing between an ingest's look at the blocks
 * and its insert would let a re-sent sample in twice (once in the block, once as a row).
 */
const LOCK_CLASS = 727_274_023

export type LockMode = 'shared' | 'exclusive'

export async function lockUser(tx: DbOrTx, userId: string, mode: LockMode): Promise<void> {
  await tx.execute(lockUserStatement(userId, mode))
}

/** The statement taking the user's lock until the end of the transaction. */
export function lockUserStatement(userId: string, mode: LockMode): SQL {
  return mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(${LOCK_CLASS}, hashtext(${userId}))`
    : sql`select pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(${userId}))`
}

/**
 * The shared locks of several users (an upload group, group-commit.ts) in one statement, taken in the order
 * given: callers sort the ids, so two groups wait for each other, never in a cycle.
 */
export function lockUsersStatement(userIds: string[]): SQL {
  return sql`select pg_advisory_xact_lock_shared(${LOCK_CLASS}, hashtext(u))
               from unnest(${sql.param(userIds)}::text[]) as u`
}

/** Takes the user's exclusive lock if free at once; false when another transaction holds it. */
export async function tryLockUser(tx: DbOrTx, userId: string): Promise<boolean> {
  const [row] = await queryRows<{ ok: boolean }>(
    tx,
    sql`select pg_try_advisory_xact_lock(${LOCK_CLASS}, hashtext(${userId})) as ok`,
  )
  return row?.ok === true
}

export const HOUR_MS = 3600_000
export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS

export interface StoredSample {
  type: MeasurementTypeName
  deviceId: string
  /** ms since the epoch */
  at: number
  value: number
}

/** Order of the row table's key after (user, type): time, then device by code point (the key's "C" order). */
export function compareSamples(a: StoredSample, b: StoredSample): number {
  if (a.at !== b.at) return a.at - b.at
  if (a.deviceId === b.deviceId) return 0
  return Buffer.compare(Buffer.from(a.deviceId), Buffer.from(b.deviceId))
}

interface BlockRow {
  type: MeasurementTypeName
  device_id: string
  hour_ms: string | number
  data: Uint8Array
}

const typeArray = (types: readonly string[]) => sql`${sql.param([...types])}::text[]`
const ts = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`

/** The blocks of the user's `types` that may hold samples in [from, to), in key order. */
export async function blocksIn(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
  extra: SQL = sql``,
  limit?: number,
): Promise<BlockRow[]> {
  return queryRows<BlockRow>(
    db,
    sql`
    select type, device_id, (extract(epoch from hour) * 1000)::int8 as hour_ms, data
      from measurement_blocks
     where user_id = ${userId} and type = any(${typeArray(types)})
       and hour >= ${ts(floorHour(fromMs))} and hour < ${ts(toMs)}
       and last_at >= ${ts(fromMs)} and first_at < ${ts(toMs)}
       ${extra}
     order by type, hour, device_id
     ${limit === undefined ? sql`` : sql`limit ${limit}`}`,
  )
}

/** The samples of blocks that lie in [from, to). */
export function samplesOf(blocks: BlockRow[], fromMs: number, toMs: number): StoredSample[] {
  const out: StoredSample[] = []
  for (const b of blocks) {
    const { times, values } = decodeBlock(b.data)
    for (let i = 0; i < times.length; i++) {
      if (times[i] >= fromMs && times[i] < toMs) {
        out.push({ type: b.type, deviceId: b.device_id, at: times[i], value: values[i] })
      }
    }
  }
  return out
}

/** The compacted samples of the user's `types` in [from, to) (block order: type, hour, device). */
export async function blockSamples(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<StoredSample[]> {
  if (toMs <= fromMs) return []
  return samplesOf(await blocksIn(db, userId, types, fromMs, toMs), fromMs, toMs)
}

/**
 * A SQL row source (type, measured_at, device_id, value) of given samples, to union with the row table.
 * Parameters are arrays, one per column: one parameter each whatever the number of samples.
 */
export function samplesSource(samples: StoredSample[]): SQL {
  return sql`
    select * from unnest(${sql.param(samples.map((s) => s.type))}::text[],
                         ${sql.param(samples.map((s) => new Date(s.at).toISOString()))}::timestamptz[],
                         ${sql.param(samples.map((s) => s.deviceId))}::text[],
                         ${sql.param(samples.map((s) => s.value))}::float8[]) as b(type, measured_at, device_id, value)`
}

/** One series-hour's samples sorted and encoded, as a measurement_blocks row's values. */
export function encodeSeriesHour(samples: StoredSample[]) {
  samples.sort(compareSamples)
  const times = samples.map((s) => s.at)
  return {
    count: samples.length,
    first: times[0],
    last: times[times.length - 1],
    data: encodeBlock({ times, values: samples.map((s) => s.value) }),
  }
}

/** Writes (or replaces) one block; an empty one is deleted. */
export async function writeBlock(
  tx: DbOrTx,
  userId: string,
  key: { type: string; deviceId: string; hour: number },
  samples: StoredSample[],
): Promise<void> {
  if (samples.length === 0) {
    await tx.execute(sql`
      delete from measurement_blocks
       where user_id = ${userId} and type = ${key.type} and hour = ${ts(key.hour)} and device_id = ${key.deviceId}`)
    return
  }
  const b = encodeSeriesHour(samples)
  await tx.execute(sql`
    insert into measurement_blocks (user_id, type, hour, device_id, count, first_at, last_at, data)
    values (${userId}, ${key.type}, ${ts(key.hour)}, ${key.deviceId}, ${b.count}, ${ts(b.first)}, ${ts(b.last)},
            ${b.data}::bytea)
    on conflict (user_id, type, hour, device_id) do update
      set count = excluded.count, first_at = excluded.first_at, last_at = excluded.last_at, data = excluded.data`)
}

export function hourOfRow(row: BlockRow): number {
  return Number(row.hour_ms)
}

/**
 * The batch without the samples a compacted block of the user already holds (same type, device and
 * timestamp): a re-sent sample stays a duplicate after its hour was compacted. Reads only the blocks of the
 * batch's (type, hour)s; a batch of recent samples finds none. Call under the user's shared lock.
 */
export async function withoutCompacted<S extends { type: string; at: number }>(
  tx: DbOrTx,
  userId: string,
  deviceId: string,
  batch: S[],
): Promise<S[]> {
  const keys = new Map<string, { type: string; hour: number }>()
  for (const s of batch) {
    const hour = floorHour(s.at)
    keys.set(`${s.type} ${hour}`, { type: s.type, hour })
  }
  const list = [...keys.values()]
  const blocks = await queryRows<BlockRow>(
    tx,
    sql`
    select b.type, b.device_id, (extract(epoch from b.hour) * 1000)::int8 as hour_ms, b.data
      from unnest(${sql.param(list.map((k) => k.type))}::text[],
                  ${sql.param(list.map((k) => new Date(k.hour).toISOString()))}::timestamptz[]) as k(type, hour)
      join measurement_blocks b on b.user_id = ${userId} and b.type = k.type and b.hour = k.hour
                               and b.device_id = ${deviceId}`,
  )
  if (blocks.length === 0) return batch
  const stored = new Set<string>()
  for (const b of blocks) {
    for (const at of decodeBlock(b.data).times) stored.add(`${b.type} ${at}`)
  }
  return batch.filter((s) => !stored.has(`${s.type} ${s.at}`))
}

/**
 * Removes the user's compacted samples of `types` in [from, to): blocks wholly inside are dropped, the
 * others rewritten without those samples. Answers how many samples went. Call under the exclusive lock.
 */
export async function deleteFromBlocks(
  tx: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<number> {
  const whole = await queryRows<{ n: number }>(
    tx,
    sql`
    with d as (
      delete from measurement_blocks
       where user_id = ${userId} and type = any(${typeArray(types)})
         and hour >= ${ts(floorHour(fromMs))} and hour < ${ts(toMs)}
         and first_at >= ${ts(fromMs)} and last_at < ${ts(toMs)}
      returning count
    )
    select coalesce(sum(count), 0)::int as n from d`,
  )
  let deleted = whole[0]?.n ?? 0
  for (const b of await blocksIn(tx, userId, types, fromMs, toMs)) {
    const all = samplesOf([b], Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)
    const kept = all.filter((x) => x.at < fromMs || x.at >= toMs)
    if (kept.length === all.length) continue
    deleted += all.length - kept.length
    await writeBlock(tx, userId, { type: b.type, deviceId: b.device_id, hour: hourOfRow(b) }, kept)
  }
  return deleted
}

/**
 * Per window (index into `windows`) and type, the compacted samples of [start, end) grouped by UTC minute
 * (count, sum). One query for the blocks overlapping any window; each block decoded once.
 */
export async function blockMinutesOfWindows(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  windows: Array<{ start: number; end: number }>,
): Promise<Array<{ i: number; type: string; minute: number; count: number; sum: number }>> {
  if (windows.length === 0) return []
  const blocks = await queryRows<BlockRow>(
    db,
    sql`
    select b.type, b.device_id, (extract(epoch from b.hour) * 1000)::int8 as hour_ms, b.data
      from measurement_blocks b
     where b.user_id = ${userId} and b.type = any(${typeArray(types)})
       and b.hour >= ${ts(floorHour(Math.min(...windows.map((w) => w.start))))}
       and b.hour < ${ts(Math.max(...windows.map((w) => w.end)))}
       and exists (select 1 from unnest(${sql.param(windows.map((w) => new Date(w.start).toISOString()))}::timestamptz[],
                                        ${sql.param(windows.map((w) => new Date(w.end).toISOString()))}::timestamptz[]) as w(s, e)
                    where b.last_at >= w.s and b.first_at < w.e)`,
  )
  const out = new Map<string, { i: number; type: string; minute: number; count: number; sum: number }>()
  for (const b of blocks) {
    const hour = hourOfRow(b)
    const { times, values } = decodeBlock(b.data)
    windows.forEach((w, i) => {
      if (w.end <= hour || w.start >= hour + HOUR_MS) return
      for (let k = 0; k < times.length; k++) {
        if (times[k] < w.start || times[k] >= w.end) continue
        const minute = Math.floor(times[k] / 60_000) * 60_000
        const key = `${i} ${b.type} ${minute}`
        const m = out.get(key)
        if (m) {
          m.count++
          m.sum += values[k]
        } else out.set(key, { i, type: b.type, minute, count: 1, sum: values[k] })
      }
    })
  }
  return [...out.values()]
}
