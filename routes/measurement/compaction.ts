import { sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { type MeasurementTypeName, TYPE_NAMES } from '../../db/schema/measurement-catalogue.ts'
import {
  HOUR_MS,
  type StoredSample,
  blocksIn,
  floorHour,
  hourOfRow,
  lockUser,
  samplesOf,
  tryLockUser,
  writeBlock,
} from './blocks.ts'
import { ensurePartitionsBetween, monthOf } from './partitions.ts'

/** One transaction moves at most this much of one user's row table into blocks. */
const CHUNK_MS = 24 * HOUR_MS

export interface CompactionResult {
  /** Users whose rows were compacted. */
  users: number
  /** Blocks written (new or rewritten with late samples). */
  blocks: number
  /** Rows moved from the row table into blocks. */
  samples: number
  /** Users left for the next run because another transaction held their lock. */
  skipped: number
}

const typeArray = sql`${sql.param([...TYPE_NAMES])}::text[]`
const ts = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`

/**
 * Rewrites the user's rows older than `before` (an hour boundary: closed hours only) into blocks, a day per
 * transaction: each (type, device, hour) becomes one block, merged with the block already there (samples that
 * arrived late), and the rows it replaced are deleted in the same transaction, under the user's exclusive lock.
 * The rollup is untouched: compaction moves samples, it changes none.
 */
async function compactUser(
  db: Db,
  userId: string,
  before: number,
  wait: boolean,
): Promise<{ blocks: number; samples: number; skipped: boolean }> {
  let blocks = 0
  let samples = 0
  const firstRow = async (db: DbOrTx) => {
    const [first] = await queryRows<{ at: string | number | null }>(
      db,
      sql`select (extract(epoch from min(measured_at)) * 1000)::int8 as at from measurements
           where user_id = ${userId} and type = any(${typeArray}) and measured_at < ${ts(before)}`,
    )
    return first?.at === null || first?.at === undefined ? null : floorHour(Number(first.at))
  }
  for (;;) {
    // The blocks' partitions for the chunk, before the transaction (DDL holds the parent's lock until commit).
    const hint = await firstRow(db)
    if (hint === null) return { blocks, samples, skipped: false }
    await ensurePartitionsBetween(db, 'measurement_blocks', hint, Math.min(hint + CHUNK_MS, before))
    const step = await db.transaction(async (tx) => {
      if (wait) await lockUser(tx, userId, 'exclusive')
      else if (!(await tryLockUser(tx, userId))) return 'skipped' as const
      const from = await firstRow(tx)
      if (from === null) return 'done' as const
      // Older rows arrived since the look (a late upload): prepare their month first.
      if (monthOf(from) !== monthOf(hint)) return 'again' as const
      const to = Math.min(from + CHUNK_MS, hint + CHUNK_MS, before)
      const rows = await queryRows<{
        type: MeasurementTypeName
        device_id: string
        at: string | number
        value: number
      }>(
        tx,
        sql`select type, device_id, (extract(epoch from measured_at) * 1000)::int8 as at, value from measurements
             where user_id = ${userId} and type = any(${typeArray})
               and measured_at >= ${ts(from)} and measured_at < ${ts(to)}`,
      )
      const series = new Map<string, { type: string; deviceId: string; hour: number; samples: StoredSample[] }>()
      const seriesOf = (type: string, deviceId: string, hour: number) => {
        const key = `${type}\u0000${deviceId}\u0000${hour}`
        let s = series.get(key)
        if (!s) {
          s = { type, deviceId, hour, samples: [] }
          series.set(key, s)
        }
        return s
      }
      for (const r of rows) {
        const at = Number(r.at)
        seriesOf(r.type, r.device_id, floorHour(at)).samples.push({
          type: r.type,
          deviceId: r.device_id,
          at,
          value: r.value,
        })
      }
      const existing = await blocksIn(tx, userId, TYPE_NAMES, from, to)
      for (const b of existing) {
        const s = series.get(`${b.type}\u0000${b.device_id}\u0000${hourOfRow(b)}`)
        // Ingest never stores a sample twice (it checks the blocks under the shared lock), so this is a union.
        if (s) s.samples.push(...samplesOf([b], Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY))
      }
      for (const s of series.values()) await writeBlock(tx, userId, s, s.samples)
      await tx.execute(sql`
        delete from measurements
         where user_id = ${userId} and type = any(${typeArray})
           and measured_at >= ${ts(from)} and measured_at < ${ts(to)}`)
      return { blocks: series.size, samples: rows.length }
    })
    if (step === 'done') return { blocks, samples, skipped: false }
    if (step === 'skipped') return { blocks, samples, skipped: true }
    if (step === 'again') continue
    blocks += step.blocks
    samples += step.samples
  }
}

/**
 * Compacts every closed hour before `before` (ms; floored to the hour) of every user. Safe to run in several
 * processes at once: a user's hours are moved by one transaction at a time (the user's exclusive lock), and
 * without `wait` a process skips a user another one is working on (or one whose ingest is in flight) and
 * leaves it for the next run.
 */
export async function compactMeasurements(db: Db, opts: { before: number; wait?: boolean }): Promise<CompactionResult> {
  const before = floorHour(opts.before)
  // One index probe per user and type (the key leads with user_id, type): no scan of the whole row table.
  const users = await queryRows<{ id: string }>(
    db,
    sql`select u.id from users u
         where exists (select 1 from measurements m
                        where m.user_id = u.id and m.type = any(${typeArray}) and m.measured_at < ${ts(before)})`,
  )
  const result: CompactionResult = { users: 0, blocks: 0, samples: 0, skipped: 0 }
  for (const { id } of users) {
    const r = await compactUser(db, id, before, opts.wait ?? false)
    if (r.samples > 0) result.users++
    result.blocks += r.blocks
    result.samples += r.samples
    if (r.skipped) result.skipped++
  }
  return result
}
