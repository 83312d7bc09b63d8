import { sql } from 'drizzle-orm'
import { type DbOrTx, queryRows } from '../../db/client.ts'

/**
 * Monthly range partitions of the raw measurement tables (measurements on measured_at, measurement_blocks
 * on hour), created by the server itself: PGlite has no pg_partman, and declarative partitioning is all
 * either database needs. A partition is named `<table>_pYYYY_MM` and holds [first of the month, first of the
 * next) in UTC. The migration creates the months of the data it found plus the next ones; the server creates
 * the current month and MONTHS_AHEAD more at start and at each compaction run, and a month it has not seen yet
 * (a phone syncing an old backup) just before the write that needs it. Dropping a month's partitions is the
 * cheap retention (see retention.ts). No default partition: a default holding rows of a month would refuse that
 * month's partition later.
 *
 * Creation is DDL, so it runs on its own (autocommit), never inside the ingest transaction, where it would hold
 * the parent's lock until commit. Two processes creating the same month at once: the loser's error is ignored
 * once the partition is there.
 */
export const PARTITIONED_TABLES = ['measurements', 'measurement_blocks'] as const
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number]
const MONTHS_AHEAD = 2

export const monthOf = (ms: number) => {
  const d = new Date(ms)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
}
const nextMonth = (month: number) => {
  const d = new Date(month)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
}
export const partitionName = (table: PartitionedTable, month: number) =>
  `${table}_p${new Date(month).toISOString().slice(0, 7).replace('-', '_')}`

/** Months known to have their partitions, per database handle (the process's pool or PGlite). */
const known = new WeakMap<object, Set<string>>()
/**
 * Months older than this are never taken from the cache: retention may drop them (in another process too),
 * so each write into one checks the catalogue.
 */
let cacheHorizonMs = Number.NEGATIVE_INFINITY
export function setPartitionCacheHorizon(ms: number) {
  cacheHorizonMs = ms
}

function cacheOf(db: DbOrTx): Set<string> {
  let set = known.get(db)
  if (!set) {
    set = new Set()
    known.set(db, set)
  }
  return set
}

async function exists(db: DbOrTx, name: string): Promise<boolean> {
  const [row] = await queryRows<{ present: boolean }>(db, sql`select to_regclass(${name}) is not null as present`)
  return row?.present === true
}

async function create(db: DbOrTx, table: PartitionedTable, month: number): Promise<void> {
  const name = partitionName(table, month)
  if (await exists(db, name)) return
  try {
    await db.execute(
      sql.raw(
        `create table if not exists "${name}" partition of "${table}" for values from ('${new Date(month).toISOString()}') to ('${new Date(nextMonth(month)).toISOString()}')`,
      ),
    )
  } catch (err) {
    // Another process created it between our look and our create.
    if (!(await exists(db, name))) throw err
  }
}

/** Makes sure the partitions of the months of `times` (ms) exist in `table`. */
export async function ensurePartitions(db: DbOrTx, table: PartitionedTable, times: Iterable<number>): Promise<void> {
  const cache = cacheOf(db)
  const months = new Set<number>()
  // A batch is mostly in one month: a time inside the last month seen needs no Date arithmetic (10,000 a batch).
  let from = Number.POSITIVE_INFINITY
  let to = Number.NEGATIVE_INFINITY
  for (const t of times) {
    if (t >= from && t < to) continue
    from = monthOf(t)
    to = nextMonth(from)
    months.add(from)
  }
  for (const month of months) {
    const key = `${table} ${month}`
    if (month >= cacheHorizonMs && cache.has(key)) continue
    await create(db, table, month)
    if (month >= cacheHorizonMs) cache.add(key)
  }
}

/** Every month from `from` to `to` (ms, inclusive) in `table`. */
export async function ensurePartitionsBetween(db: DbOrTx, table: PartitionedTable, from: number, to: number) {
  const months: number[] = []
  for (let m = monthOf(from); m <= to; m = nextMonth(m)) months.push(m)
  await ensurePartitions(db, table, months)
}

/** The current month and the next MONTHS_AHEAD ones, in every partitioned table. */
export async function ensurePartitionsAhead(db: DbOrTx, now = Date.now()): Promise<void> {
  const months = [monthOf(now)]
  for (let i = 0; i < MONTHS_AHEAD; i++) months.push(nextMonth(months[months.length - 1]))
  for (const table of PARTITIONED_TABLES) await ensurePartitions(db, table, months)
}

/** The months (ms) that have a partition in `table`, oldest first. */
export async function partitionMonths(db: DbOrTx, table: PartitionedTable): Promise<number[]> {
  const rows = await queryRows<{ name: string }>(
    db,
    sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
         where i.inhparent = to_regclass(${table}) order by 1`,
  )
  const out: number[] = []
  for (const { name } of rows) {
    const m = /_p(\d{4})_(\d{2})$/.exec(name)
    if (m) out.push(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1))
  }
  return out.sort((a, b) => a - b)
}

/** Drops one month's partition of `table` (retention). */
export async function dropPartition(db: DbOrTx, table: PartitionedTable, month: number): Promise<void> {
  cacheOf(db).delete(`${table} ${month}`)
  await db.execute(sql.raw(`drop table if exists "${partitionName(table, month)}"`))
}
