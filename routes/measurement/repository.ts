import { type SQL, sql } from 'drizzle-orm'
import type pg from 'pg'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { driverError } from '../../db/errors.ts'
import { pipelined } from '../../db/pipelined.ts'
import { CATALOGUE, type MeasurementTypeName, TYPE_NAMES } from '../../db/schema/measurement-catalogue.ts'
import { readSnapshot } from '../../db/snapshot.ts'
import type { ChangeEntry, UserChanges } from '../../plugins/changes.ts'
import { createUserRepository } from '../user/repository.ts'
import {
  type StoredSample,
  blockMinutesOfWindows,
  blockSamples,
  blocksIn,
  compareSamples,
  deleteFromBlocks,
  floorHour,
  hourOfRow,
  lockUser,
  lockUsersStatement,
  samplesOf,
  samplesSource,
  withoutCompacted,
} from './blocks.ts'
import {
  type DirectPlan,
  type QuarterRollup,
  planDirectBlocks,
  rollupOfSamples,
  rollupRows,
  splitClosedHours,
  upsertBlocks,
} from './direct-blocks.ts'
import type { GroupCommit } from './group-commit.ts'

/** `device_id` stored for samples sent without one (a primary key column cannot be null). */
export const NO_DEVICE = ''

export const BUCKETS = ['1m', '5m', '15m', '1h', '1d'] as const
export type Bucket = (typeof BUCKETS)[number]
export const BUCKET_MINUTES: Record<Bucket, number> = { '1m': 1, '5m': 5, '15m': 15, '1h': 60, '1d': 1440 }

export interface NewSample {
  type: MeasurementTypeName
  /** Milliseconds since the epoch (the stored precision). */
  at: number
  value: number
}

export interface SampleRow {
  type: MeasurementTypeName
  timestamp: string
  device_id: string | null
  value: number
}

export interface AggregateRow {
  start: string
  end: string
  date?: string
  count: number
  avg: number
  min: number
  max: number
  sum: number
}

export interface WindowStat {
  count: number
  avg: number
  min: number
  max: number
  sum: number
}

/** The statistics of one calendar day in the user's time zone; null where that day has no data. */
export interface DailyStatistics {
  date: string
  resting_heart_rate: number | null
  heart_rate_avg: number | null
  heart_rate_min: number | null
  heart_rate_max: number | null
  hrv_rmssd_avg: number | null
  skin_temperature_avg: number | null
  spo2_avg: number | null
  respiratory_rate_avg: number | null
  stress_avg: number | null
  steps: number | null
  distance: number | null
  active_energy: number | null
}

export type StatisticKey = Exclude<keyof DailyStatistics, 'date'>

const MINUTE_MS = 60_000
/** Bounds of an open range (the API's timestamps lie in 1900..2200). */
const EARLIEST = Date.parse('1000-01-01T00:00:00Z')
const LATEST = Date.parse('9000-01-01T00:00:00Z')
/** Blocks read per query while filling a page of raw samples. */
const LIST_BLOCK_BATCH = 4
const QUARTER_MS = 15 * MINUTE_MS
const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step
const ceilTo = (ms: number, step: number) => Math.ceil(ms / step) * step

/** RFC 3339 UTC with milliseconds, formatted by the database so both drivers answer the same text. */
const iso = (column: SQL) => sql`to_char((${column}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
const ts = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`
/** A text[] parameter: the driver encodes the array (pg and PGlite alike), never a string joined here. */
const typeArray = (types: readonly string[]) => sql`${sql.param([...types])}::text[]`
// The UTC minute, 5 minutes and quarter-hour of a timestamp, whatever the session's TimeZone.
const minuteOf = (column: SQL) => sql`date_trunc('minute', ${column}, 'UTC')`
const fiveOf = (column: SQL) => sql`date_bin('5 minutes', ${column}, timestamptz '2000-01-01T00:00:00Z')`
const quarterOf = (column: SQL) => sql`date_bin('15 minutes', ${column}, timestamptz '2000-01-01T00:00:00Z')`

/** The samples (type, measured_at, device_id, value) of the user's `types` in [from, to) in the row table. */
function rowSamples(userId: string, types: readonly string[], fromMs: number, toMs: number): SQL {
  return sql`
    select type, measured_at, device_id, value from measurements
     where user_id = ${userId} and type = any(${typeArray(types)})
       and measured_at >= ${ts(fromMs)} and measured_at < ${ts(toMs)}`
}

/**
 * Every stored sample (type, measured_at, device_id, value) of the user's `types` in [from, to): the row
 * table's, and the compacted ones of measurement_blocks decoded here and passed as array parameters. For
 * short ranges (the partial quarter-hours at a range's edges, a night of sleep stages).
 */
async function rawSamples(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<SQL> {
  const rows = rowSamples(userId, types, fromMs, toMs)
  const compacted = await blockSamples(db, userId, types, fromMs, toMs)
  return compacted.length ? sql`${rows} union all ${samplesSource(compacted)}` : rows
}

/** Raw samples over the union of the ranges, as one source. */
async function rawSamplesIn(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  ranges: Array<[number, number]>,
): Promise<SQL> {
  const parts = await Promise.all(ranges.filter(([f, t]) => t > f).map(([f, t]) => rawSamples(db, userId, types, f, t)))
  return parts.length ? sql.join(parts, sql` union all `) : rowSamples(userId, types, 0, 0)
}

const WINDOWS = [0, 1, 2] as const
const ROLLUP_COLUMNS = sql.raw(
  `user_id, type, quarter, count, sum, min, max, ${WINDOWS.map((w) => `w${w}_count, w${w}_sum, w${w}_min, w${w}_max`).join(', ')}, minute_mask`,
)

/**
 * measurement_quarters rows (in ROLLUP_COLUMNS order) of the samples `source` selects (type, measured_at,
 * value), one per type and quarter-hour, in key order (so concurrent upserts lock rows in the same order).
 * `userId` null: several users' samples, `source` selecting user_id first (an upload group).
 */
function rollupOf(userId: string | null, source: SQL): SQL {
  const user = userId === null ? sql`user_id` : sql`${userId}::uuid`
  const by = userId === null ? sql`user_id, ` : sql``
  return sql`
    select ${user}, type, quarter, count(*)::int, sum(value), min(value), max(value),
           ${sql.join(
             WINDOWS.map(
               (w) => sql`(count(*) filter (where mi / 5 = ${sql.raw(String(w))}))::int,
                 coalesce(sum(value) filter (where mi / 5 = ${sql.raw(String(w))}), 0),
                 min(value) filter (where mi / 5 = ${sql.raw(String(w))}),
                 max(value) filter (where mi / 5 = ${sql.raw(String(w))})`,
             ),
             sql`, `,
           )},
           bit_or(1 << mi)
      from (
        select ${by}type, value, quarter, floor(extract(epoch from measured_at - quarter) / 60)::int as mi
          from (select ${by}type, measured_at, value, ${quarterOf(sql`measured_at`)} as quarter from (${source}) s0) s1
      ) s
     group by ${by}type, quarter
     order by ${by}type, quarter`
}

/** ON CONFLICT of a rollup upsert that adds new samples to what the quarter-hour already holds. */
const ADD_TO_ROLLUP = sql.raw(
  `count = m.count + excluded.count, sum = m.sum + excluded.sum,
   min = least(m.min, excluded.min), max = greatest(m.max, excluded.max),
   ${WINDOWS.map(
     (w) => `w${w}_count = m.w${w}_count + excluded.w${w}_count, w${w}_sum = m.w${w}_sum + excluded.w${w}_sum,
   w${w}_min = least(m.w${w}_min, excluded.w${w}_min), w${w}_max = greatest(m.w${w}_max, excluded.w${w}_max)`,
   ).join(',\n   ')},
   minute_mask = m.minute_mask | excluded.minute_mask`,
)

/** ON CONFLICT of a rollup upsert that replaces the quarter-hour with a recomputation. */
const REPLACE_ROLLUP = sql.raw(
  [
    'count',
    'sum',
    'min',
    'max',
    ...WINDOWS.flatMap((w) => ['count', 'sum', 'min', 'max'].map((c) => `w${w}_${c}`)),
    'minute_mask',
  ]
    .map((c) => `${c} = excluded.${c}`)
    .join(', '),
)

/**
 * [from, to) split for the rollup: the whole quarter-hours inside it [innerFrom, innerTo) (which the rollup
 * answers) and the raw samples of the partial quarter-hours at its two edges (at most 2 x 15 minutes).
 */
async function splitAtQuarters(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<{ innerFrom: number; innerTo: number; edges: SQL }> {
  let innerFrom = ceilTo(fromMs, QUARTER_MS)
  let innerTo = floorTo(toMs, QUARTER_MS)
  if (innerFrom >= innerTo) innerFrom = innerTo = fromMs
  const edges = await rawSamplesIn(db, userId, types, [
    [fromMs, innerFrom],
    [innerTo, toMs],
  ])
  return { innerFrom, innerTo, edges }
}

/**
 * Slots (type, slot, count, sum, min, max) covering [from, to) exactly, in UTC quarter-hours (`15m`) or
 * 5 minutes (`5m`, the rollup's 5-minute windows): the rollup for the whole quarter-hours inside the range,
 * raw rows grouped by slot for the partial ones at its edges. Read in the caller's snapshot (readSnapshot):
 * the edges come from the blocks and the row table.
 */
async function rollupSource(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
  slot: '15m' | '5m',
): Promise<SQL> {
  const { innerFrom, innerTo, edges } = await splitAtQuarters(db, userId, types, fromMs, toMs)
  const inner = sql`q.user_id = ${userId} and q.type = any(${typeArray(types)})
       and q.quarter >= ${ts(innerFrom)} and q.quarter < ${ts(innerTo)}`
  const rollup =
    slot === '15m'
      ? sql`select q.type, q.quarter as slot, q.count, q.sum, q.min, q.max from measurement_quarters q where ${inner}`
      : sql`
    select q.type, q.quarter + make_interval(mins => 5 * w.i) as slot, w.count, w.sum, w.min, w.max
      from measurement_quarters q
     cross join lateral (values (0, q.w0_count, q.w0_sum, q.w0_min, q.w0_max),
                                (1, q.w1_count, q.w1_sum, q.w1_min, q.w1_max),
                                (2, q.w2_count, q.w2_sum, q.w2_min, q.w2_max)) w(i, count, sum, min, max)
     where ${inner} and w.count > 0`
  return sql`
    ${rollup}
    union all
    select type, ${(slot === '15m' ? quarterOf : fiveOf)(sql`measured_at`)}, count(*)::int, sum(value), min(value), max(value)
      from (${edges}) r
     group by 1, 2`
}

/**
 * Raw samples grouped by UTC minute over [from, to) (1m buckets: the rollup has no minutes): the row table's
 * in SQL, the compacted ones decoded and grouped here (a week of 1 Hz samples is 10,080 minutes, never
 * 604,800 parameters). A minute may have both; the caller's grouping by slot adds them up.
 */
async function minuteSource(
  db: DbOrTx,
  userId: string,
  types: readonly string[],
  fromMs: number,
  toMs: number,
): Promise<SQL> {
  const rows = sql`
    select type, ${minuteOf(sql`measured_at`)} as slot, count(*)::int as count, sum(value) as sum,
           min(value) as min, max(value) as max
      from (${rowSamples(userId, types, fromMs, toMs)}) r
     group by 1, 2`
  const minutes = new Map<
    string,
    { type: string; slot: number; count: number; sum: number; min: number; max: number }
  >()
  for (const x of await blockSamples(db, userId, types, fromMs, toMs)) {
    const slot = floorTo(x.at, MINUTE_MS)
    const key = `${x.type} ${slot}`
    const m = minutes.get(key)
    if (m) {
      m.count++
      m.sum += x.value
      if (x.value < m.min) m.min = x.value
      if (x.value > m.max) m.max = x.value
    } else minutes.set(key, { type: x.type, slot, count: 1, sum: x.value, min: x.value, max: x.value })
  }
  if (minutes.size === 0) return rows
  const list = [...minutes.values()]
  return sql`${rows} union all
    select * from unnest(${sql.param(list.map((m) => m.type))}::text[],
                         ${sql.param(list.map((m) => new Date(m.slot).toISOString()))}::timestamptz[],
                         ${sql.param(list.map((m) => m.count))}::int[], ${sql.param(list.map((m) => m.sum))}::float8[],
                         ${sql.param(list.map((m) => m.min))}::float8[], ${sql.param(list.map((m) => m.max))}::float8[])
      as b(type, slot, count, sum, min, max)`
}

/**
 * Bucket start of a slot (a UTC minute, 5 minutes or quarter-hour of the matching source). Hours and days follow the user's zone: a local hour starts where the local
 * minute-of-hour is 0 (so the repeated hour of a DST fall-back gives two buckets, and :30/:45 zones get their
 * own hours); a day is the local calendar date (23 or 25 hours on DST days). 5 and 15 minutes are aligned
 * with UTC, which is aligned with every zone's offset too; so a quarter-hour lies in one local hour and day.
 */
function bucketStart(bucket: Bucket, tz: string): SQL {
  switch (bucket) {
    case '1m':
    case '5m':
    case '15m':
      return sql`slot`
    case '1h':
      return sql`slot - make_interval(mins => extract(minute from slot at time zone ${tz})::int)`
    case '1d':
      return sql`((slot at time zone ${tz})::date::timestamp at time zone ${tz})`
  }
}

function bucketEnd(bucket: Bucket, tz: string): SQL {
  if (bucket === '1d') return sql`((b.start at time zone ${tz}) + interval '1 day') at time zone ${tz}`
  // 1m .. 1h
  return sql`b.start + make_interval(mins => ${BUCKET_MINUTES[bucket]})`
}

/**
 * One row (first_day date, starts timestamptz[]): the instants where the local days first..last (SQL date
 * expressions, `last` exclusive) begin in zone `tz`, the end of the last day included. A quarter-hour's day is
 * then first_day + width_bucket(quarter, starts) - 1, a binary search over a few hundred instants instead of a
 * time zone conversion per quarter-hour (a year is 35,040 of them per type).
 */
function dayBounds(first: SQL, last: SQL, tz: string): SQL {
  return sql`
    select (${first})::date as first_day, array_agg(d at time zone ${tz} order by d) as starts
      from generate_series((${first})::date::timestamp, (${last})::date::timestamp, interval '1 day') d`
}

/**
 * 1d buckets: the rollup's quarter-hours of [from, to) put into local days (dayBounds), plus the raw partial
 * quarter-hours at the range's edges. The same buckets as bucketStart('1d') would give.
 */
async function dayBuckets(
  db: DbOrTx,
  userId: string,
  type: MeasurementTypeName,
  fromMs: number,
  toMs: number,
  tz: string,
): Promise<AggregateRow[]> {
  const { innerFrom, innerTo, edges } = await splitAtQuarters(db, userId, [type], fromMs, toMs)
  return queryRows<AggregateRow>(
    db,
    sql`
    with bounds as (${dayBounds(sql`(${ts(fromMs)} at time zone ${tz})::date`, sql`(${ts(toMs - 1)} at time zone ${tz})::date + 1`, tz)}),
    m as (
      select b.first_day + width_bucket(q.quarter, b.starts) - 1 as day, q.count, q.sum, q.min, q.max
        from bounds b
        join measurement_quarters q
          on q.user_id = ${userId} and q.type = ${type}
         and q.quarter >= ${ts(innerFrom)} and q.quarter < ${ts(innerTo)}
      union all
      select (${quarterOf(sql`measured_at`)} at time zone ${tz})::date, count(*)::int, sum(value), min(value), max(value)
        from (${edges}) r group by 1
    ),
    b as (
      select day, sum(count)::int as count, sum(sum) as sum, min(min) as min, max(max) as max from m group by day
    )
    select ${iso(sql`b.day::timestamp at time zone ${tz}`)} as start,
           ${iso(sql`(b.day + 1)::timestamp at time zone ${tz}`)} as "end",
           to_char(b.day, 'YYYY-MM-DD') as date, count, sum / count as avg, min, max, sum
      from b order by b.day`,
  )
}

const STAT_TYPES = [
  'heart_rate',
  'hrv_rmssd',
  'skin_temperature',
  'spo2',
  'respiratory_rate',
  'stress',
  'steps',
  'distance',
  'active_energy',
] as const

/**
 * Resting heart rate of a day: the lowest mean heart rate over the day's aligned 5-minute windows that have
 * samples in at least 3 of their 5 minutes (so one stray low reading cannot set it).
 */
export const RESTING_WINDOW_MIN_MINUTES = 3

/**
 * Per-day sums, counts, extremes and resting heart rate over local days [fromDate, toDate]; SQL of one query.
 * Local days start and end on UTC quarter-hours in every zone, so the rollup alone answers them exactly.
 */
/**
 * How many of window w's five minutes have samples: the bits of minute_mask, added up as integers (a cast to
 * bit(5) for bit_count allocated a bit string per row, a tenth of a year's daily statistics).
 */
const minutesOfWindow = (w: number) => [0, 1, 2, 3, 4].map((b) => `((q.minute_mask >> ${5 * w + b}) & 1)`).join(' + ')

function dailyCore(userId: string, tz: string, fromDate: string, toDate: string): SQL {
  // One pass over the quarter-hours (a year is 35,040 rows per type), grouped by day and type at once: the
  // resting heart rate is a min in the same groups, so no intermediate row set is materialised (a CTE read
  // twice was written out, to disk past work_mem, and read back).
  return sql`
    bounds as (${dayBounds(sql`${fromDate}::date`, sql`${toDate}::date + 1`, tz)}),
    per_type as (
      select b.first_day + width_bucket(q.quarter, b.starts) - 1 as day, q.type,
             sum(q.count)::float8 as n, sum(q.sum) as s, min(q.min) as lo, max(q.max) as hi,
             min(case when q.type = 'heart_rate' then least(${sql.join(
               WINDOWS.map((w) =>
                 sql.raw(`case when ${minutesOfWindow(w)} >= ${RESTING_WINDOW_MIN_MINUTES}
                     then q.w${w}_sum / q.w${w}_count end`),
               ),
               sql`, `,
             )}) end) as resting
        from bounds b
        join measurement_quarters q
          on q.user_id = ${userId} and q.type = any(${typeArray(STAT_TYPES)})
         and q.quarter >= b.starts[1] and q.quarter < b.starts[cardinality(b.starts)]
       group by 1, 2
    ),
    days as (
      select d::date as day from generate_series(${fromDate}::date::timestamp, ${toDate}::date::timestamp, interval '1 day') d
    ),
    daily as (
      select d.day,
             max(p.resting) filter (where p.type = 'heart_rate') as resting_heart_rate,
             max(p.n) filter (where p.type = 'heart_rate') as hr_n,
             max(p.s) filter (where p.type = 'heart_rate') as hr_s,
             max(p.lo) filter (where p.type = 'heart_rate') as heart_rate_min,
             max(p.hi) filter (where p.type = 'heart_rate') as heart_rate_max,
             ${sql.join(
               (['hrv_rmssd', 'skin_temperature', 'spo2', 'respiratory_rate', 'stress'] as const).map(
                 (t) => sql`max(p.n) filter (where p.type = ${t}) as ${sql.raw(`${t}_n`)},
                   max(p.s) filter (where p.type = ${t}) as ${sql.raw(`${t}_s`)}`,
               ),
               sql`, `,
             )},
             max(p.s) filter (where p.type = 'steps') as steps,
             max(p.s) filter (where p.type = 'distance') as distance,
             max(p.s) filter (where p.type = 'active_energy') as active_energy
        from days d
        left join per_type p on p.day = d.day
       group by d.day
    )`
}

const AVERAGED = ['hrv_rmssd', 'skin_temperature', 'spo2', 'respiratory_rate', 'stress'] as const

/** An upload's change log entries, and the change plugin's recording (plugins/changes.ts) to write them. */
export interface UploadChanges {
  entries: ChangeEntry[]
  recording: (users: UserChanges[], when?: SQL) => SQL
}

/** One upload of a group statement (group-commit.ts). */
export interface GroupUpload {
  userId: string
  /** NO_DEVICE for none. */
  device: string
  samples: NewSample[]
  changes?: UploadChanges
}

/** What a group statement answers per upload: `blocked` when it met a compacted block and stored nothing. */
export interface GroupStored {
  accepted: number
  blocked: boolean
}

/** The user id order of a group's writes (and of its users' locks), so that two groups cannot deadlock. */
const byUser = (a: GroupUpload, b: GroupUpload) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0)

/**
 * The one statement of a group of uploads of different users (group-commit.ts; a lone upload is a group of
 * one), under their shared locks: the samples (times as ms since the epoch, exact in int8 and cheaper for the
 * server than parsing timestamps) into the row table, skipping those already there; the rows stored added to
 * their quarter-hours; each user's change log entries where a sample of theirs was stored. An upload meeting a
 * compacted block of one of its (type, hour)s stores nothing and answers `blocked` (its user then goes the
 * transaction's way, withoutCompacted); the others of the group are stored. One row per upload, in `uploads`
 * order (sorted by byUser): user_id, accepted, blocked, repeated (some distinct sample of it was stored already).
 *
 * Only the first sample of a repeated (type, time) of an upload goes to the insert (the later ones are the
 * batch's own duplicates). `conflicts`: `skip` inserts with ON CONFLICT DO NOTHING, which skips samples stored
 * before; `fail` inserts plainly, so a sample stored before fails the whole statement with a unique violation
 * (23505), nothing of it written. A plain insert costs PostgreSQL about a third less per row than ON CONFLICT's
 * speculative insertion (a look into the index before each row, and a second WAL record to confirm it), and live
 * uploads are new samples: storeGroup tries `fail` first and runs the group again with `skip` only after a 23505.
 */
function groupInsertStatement(uploads: GroupUpload[], conflicts: 'skip' | 'fail' = 'skip'): SQL {
  // Per sample: the upload's place (1-based), type, time and value, as array literals built here. These are
  // numbers and catalogue names ([a-z_0-9]) that need no quoting, where node-postgres would escape each of 60 x N
  // elements again and again (5 % of the server's CPU for live minutes). User ids and device ids are per upload.
  const keys = { upload: [] as number[], type: [] as string[], hour: [] as number[] }
  const rows = { upload: [] as number[], type: [] as string[], at: [] as number[], value: [] as number[] }
  // The rollup of each upload's distinct samples (the first of a repeated (type, time), as the insert keeps),
  // computed here: it is what the database's aggregate over the inserted rows gives when every one of them was
  // new, the usual case. Where some were already stored (a re-send) the statement aggregates what it inserted.
  const quarters: QuarterRollup[] = []
  const distinct: number[] = []
  uploads.forEach((u, i) => {
    // Per type: the times seen and the hours keyed (numbers, not strings made per sample: this loop runs for
    // every sample of every upload). A batch is mostly one type in time order, so the last type's sets are kept.
    const byType = new Map<string, { times: Set<number>; hours: Set<number> }>()
    let lastType: string | undefined
    let seen: { times: Set<number>; hours: Set<number> } | undefined
    const fresh: NewSample[] = []
    for (const s of u.samples) {
      if (s.type !== lastType || !seen) {
        lastType = s.type
        seen = byType.get(s.type)
        if (!seen) {
          seen = { times: new Set(), hours: new Set() }
          byType.set(s.type, seen)
        }
      }
      if (seen.times.has(s.at)) continue
      seen.times.add(s.at)
      fresh.push(s)
      rows.upload.push(i + 1)
      rows.type.push(s.type)
      rows.at.push(s.at)
      rows.value.push(s.value)
      const hour = floorHour(s.at)
      if (seen.hours.has(hour)) continue
      seen.hours.add(hour)
      keys.upload.push(i + 1)
      keys.type.push(s.type)
      keys.hour.push(hour)
    }
    distinct.push(fresh.length)
    quarters.push(...rollupOfSamples(fresh, i + 1))
  })
  const literal = (values: Array<number | string>) => `{${values.join(',')}}`
  // What the schema let through; checked again here because these literals are not escaped.
  for (const t of keys.type) if (!(t in CATALOGUE)) throw new Error(`not a sample type: ${JSON.stringify(t)}`)
  for (const v of rows.value) if (!Number.isFinite(v)) throw new Error('a sample value is not a finite number')
  for (const v of rows.at) if (!Number.isSafeInteger(v)) throw new Error('a sample time is not whole milliseconds')
  const recorded = uploads.filter((u) => u.changes && u.changes.entries.length > 0)
  const recording = recorded[0]?.changes?.recording
  const changes = recording
    ? sql`, ${recording(
        recorded.map((u) => ({ userId: u.userId, entries: u.changes?.entries ?? [] })),
        sql`u.user_id in (select user_id from stored)`,
      )}`
    : sql``
  return sql`
    with up as (
      select * from unnest(${sql.param(uploads.map((u) => u.userId))}::uuid[], ${sql.param(uploads.map((u) => u.device))}::text[],
                           ${literal(distinct)}::int[]) with ordinality as u(user_id, device_id, distinct_n, ord)
    ),
    blocked as (
      select distinct up.user_id
        from unnest(${literal(keys.upload)}::int[], ${literal(keys.type)}::text[], ${literal(keys.hour)}::int8[])
             as k(ord, type, hour_ms)
        join up on up.ord = k.ord
        join measurement_blocks b
          on b.user_id = up.user_id and b.type = k.type and b.device_id = up.device_id
         and b.hour = timestamptz 'epoch' + k.hour_ms * interval '1 millisecond'
    ),
    input as (
      select up.user_id, up.device_id, t.type, timestamptz 'epoch' + t.ms * interval '1 millisecond' as measured_at, t.value
        from unnest(${literal(rows.upload)}::int[], ${literal(rows.type)}::text[], ${literal(rows.at)}::int8[],
                    ${literal(rows.value)}::float8[]) with ordinality as t(ord, type, ms, value, n)
        join up on up.ord = t.ord
       where up.user_id not in (select user_id from blocked)
       order by t.n
    ),
    ins as (
      insert into measurements (user_id, type, measured_at, device_id, value)
      select user_id, type, measured_at, device_id, value from input
      ${conflicts === 'skip' ? sql`on conflict do nothing` : sql``}
      returning user_id, type, measured_at, value
    ),
    stored as (select user_id, count(*)::int as n from ins group by user_id),
    whole as (select s.user_id from stored s join up on up.user_id = s.user_id where s.n = up.distinct_n),
    roll as (
      insert into measurement_quarters as m (${ROLLUP_COLUMNS})
      select * from (
        select * from (${rollupRows(null, quarters)}) computed where computed.user_id in (select user_id from whole)
        union all
        select * from (${rollupOf(null, sql`select user_id, type, measured_at, value from ins where user_id not in (select user_id from whole)`)}) aggregated
      ) q
      order by 1, 2, 3
      on conflict (user_id, type, quarter) do update set ${ADD_TO_ROLLUP}
    )${changes}
    select up.user_id::text as user_id, coalesce(s.n, 0)::int as accepted, up.user_id in (select user_id from blocked) as blocked,
           coalesce(s.n, 0) < up.distinct_n as repeated
      from up left join stored s on s.user_id = up.user_id
     order by up.ord`
}

const isTrue = (v: unknown) => v === true || v === 't'

/** A group statement's rows as answers, in the uploads' order (rows as text, or as values from drizzle). */
function groupAnswers(rows: Array<Record<string, unknown>>): Array<GroupStored & { repeated: boolean }> {
  return rows.map((r) => ({ accepted: Number(r.accepted), blocked: isTrue(r.blocked), repeated: isTrue(r.repeated) }))
}

/** How long a user who re-sent stored samples has their uploads inserted with ON CONFLICT at once. */
const RESENDER_MS = 60_000
/** Users remembered so at most (the oldest are forgotten first). */
const MAX_RESENDERS = 10_000

/**
 * The samples (known to meet no compacted block of the device: the plan's, or those withoutCompacted left)
 * into the row table in one statement, skipping those already there, with their rollup, the blocks and rollup
 * of `direct` (direct-blocks.ts) and the change log where `changes` gives it (recorded when something was stored).
 */
async function insertSamples(
  tx: DbOrTx,
  userId: string,
  device: string,
  samples: NewSample[],
  changes?: UploadChanges,
  /**
   * Blocks written straight by this batch and their rollup (`samples` are then the plan's row-path samples).
   * Under the user's exclusive lock. The answer counts the row path's samples only: the caller adds the plan's.
   */
  options: { direct?: DirectPlan<NewSample> } = {},
): Promise<number> {
  const directCount = options.direct?.accepted ?? 0
  if (samples.length === 0 && directCount === 0) return 0
  const direct = options.direct?.blocks.length ? options.direct : undefined
  const stored = direct ? sql`true` : sql`exists (select 1 from ins)`
  const recording = changes?.entries.length
    ? sql`, ${changes.recording([{ userId, entries: changes.entries }], stored)}`
    : sql``
  const [row] = await queryRows<{ accepted: number }>(
    tx,
    sql`
    with input as (
      select type, timestamptz 'epoch' + ms * interval '1 millisecond' as measured_at, value
        from unnest(${sql.param(samples.map((s) => s.type))}::text[], ${sql.param(samples.map((s) => s.at))}::int8[],
                    ${sql.param(samples.map((s) => s.value))}::float8[]) as t(type, ms, value)
    ),
    ins as (
      insert into measurements (user_id, type, measured_at, device_id, value)
      select ${userId}, type, measured_at, ${device}, value from input
      on conflict do nothing
      returning type, measured_at, value
    ),
    roll as (
      insert into measurement_quarters as m (${ROLLUP_COLUMNS})
      ${rollupOf(userId, sql`select type, measured_at, value from ins`)}
      on conflict (user_id, type, quarter) do update set ${ADD_TO_ROLLUP}
    )${
      direct
        ? sql`,
    blk as (${upsertBlocks(userId, device, direct)}),
    blk_roll as (
      insert into measurement_quarters as m (${ROLLUP_COLUMNS})
      ${rollupRows(userId, direct.quarters)}
      on conflict (user_id, type, quarter) do update set ${ADD_TO_ROLLUP}
    )`
        : sql``
    }${recording}
    select (select count(*) from ins)::int as accepted`,
  )
  return (row?.accepted ?? 0) + directCount
}

/**
 * Account deletion's step for the row table, which has no foreign key to users (db/schema/measurement.ts):
 * the user's raw rows, in the deletion's transaction (blocks and the rollup cascade from the user row).
 */
export async function deleteUserSamples(tx: DbOrTx, userId: string): Promise<void> {
  await tx.execute(sql`delete from measurements where user_id = ${userId}`)
}

export function createMeasurementRepository(db: Db) {
  const users = createUserRepository(db)
  /**
   * Users whose upload held samples stored before (a re-send after a lost answer), until when: a group with
   * one of them inserts with ON CONFLICT at once, so a client re-sending again and again costs the others of its
   * group one statement, not a failed one and a second (groupInsertStatement's `conflicts`).
   */
  const resenders = new Map<string, number>()
  const resending = (userId: string, now: number) => {
    const until = resenders.get(userId)
    if (until === undefined) return false
    if (until > now) return true
    resenders.delete(userId)
    return false
  }
  const resent = (userId: string, now: number) => {
    resenders.delete(userId)
    resenders.set(userId, now + RESENDER_MS)
    if (resenders.size > MAX_RESENDERS) resenders.delete(resenders.keys().next().value as string)
  }

  return {
    /**
     * Stores a validated batch, in the caller's transaction: new rows go in, samples already stored (same
     * user, type, timestamp, device; in the row table or in a compacted block) are skipped, and the new rows'
     * count/sum/min/max are added to their quarter-hours in measurement_quarters by the same statement, so the
     * rollup is never out of step with the raw rows. Under the user's shared lock (blocks.ts), so that no
     * compaction moves rows into blocks between the look at the blocks and the insert.
     *
     * Round trips (issue 23b): the lock, then one statement (the group statement, with this batch alone) that
     * inserts only if no block of the batch's (type, hour)s exists (the usual case: recent samples) and also
     * writes the change log (`changes`, recorded when some sample was stored). Where a block exists (a re-send
     * after compaction, a late sample of a compacted hour) that statement stores nothing and says so, and the
     * batch goes again without the samples the blocks hold (withoutCompacted): two round trips more, only then.
     *
     * With `closedBefore`, a batch with samples of closed hours goes the other way (direct-blocks.ts): under the
     * user's exclusive lock its hours are looked at, then one statement writes blocks, rows, rollup and change log.
     */
    async ingest(
      userId: string,
      deviceId: string | undefined,
      batch: NewSample[],
      tx: DbOrTx,
      changes?: UploadChanges,
      /** Known to meet a block already (a group statement said so): straight to the look at the blocks. */
      blocked = false,
      /** Hours ending before this (ms) go straight into blocks where they hold nothing yet (direct-blocks.ts). */
      closedBefore?: number,
    ): Promise<{ accepted: number; duplicates: number }> {
      const device = deviceId ?? NO_DEVICE
      const split = closedBefore === undefined ? undefined : splitClosedHours(batch, closedBefore)
      if (split?.groups.length) {
        // Closed hours: looked at and written under the exclusive lock, in one pass (direct-blocks.ts).
        await lockUser(tx, userId, 'exclusive')
        const direct = await planDirectBlocks(tx, userId, device, split)
        const accepted = await insertSamples(tx, userId, device, direct.rows, changes, { direct })
        return { accepted, duplicates: batch.length - accepted }
      }
      if (batch.length === 0) return { accepted: 0, duplicates: 0 }
      await lockUser(tx, userId, 'shared')
      let stored: GroupStored = { accepted: 0, blocked: true }
      if (!blocked) {
        ;[stored] = groupAnswers(
          await queryRows(tx, groupInsertStatement([{ userId, device, samples: batch, changes }])),
        )
      }
      if (stored.blocked) {
        const samples = await withoutCompacted(tx, userId, device, batch)
        stored.accepted = await insertSamples(tx, userId, device, samples, changes)
      }
      return { accepted: stored.accepted, duplicates: batch.length - stored.accepted }
    },

    /**
     * Uploads of different users as one statement in one round trip and one transaction on a connection of
     * `pool` (db/pipelined.ts: each statement its own snapshot, so the statement looks at the blocks only once
     * it holds the locks): the run of a group commit (group-commit.ts). One answer per upload, in their order.
     * `prepare`: as named prepared statements (DATABASE_PREPARED_STATEMENTS): the statement's text is the same
     * for any group (its values are array parameters), so each connection plans it once.
     */
    async storeGroup(
      pool: pg.Pool,
      uploads: GroupUpload[],
      options: { prepare?: boolean } = {},
    ): Promise<GroupStored[]> {
      const sorted = [...uploads].sort(byUser)
      const lock = lockUsersStatement(sorted.map((u) => u.userId))
      const now = Date.now()
      // New samples, the usual case, go in by a plain insert; a sample stored before refuses it whole (23505),
      // and the group goes again skipping what is stored.
      const run = (conflicts: 'skip' | 'fail') =>
        pipelined(pool, [lock, groupInsertStatement(sorted, conflicts)], options)
      const rows = sorted.some((u) => resending(u.userId, now))
        ? await run('skip')
        : await run('fail').catch((err) => {
            if (driverError(err)?.code !== '23505') throw err
            return run('skip')
          })
      const stored = groupAnswers(rows)
      sorted.forEach((u, i) => {
        if (stored[i].repeated && !stored[i].blocked) resent(u.userId, now)
      })
      const answers = new Map(sorted.map((u, i) => [u, stored[i]]))
      return uploads.map((u) => {
        const { accepted, blocked } = answers.get(u) as GroupStored
        return { accepted, blocked }
      })
    },

    /**
     * A whole upload, all-or-nothing. With a group commit (`group`: PostgreSQL's pool, see storeGroup) it goes
     * with the uploads of other users waiting at the same time; only a batch that meets a compacted block takes
     * a transaction of its own as well. A batch with samples of closed hours (`closedBefore`, see `ingest`), and
     * every batch without `group` (PGlite, the CLI), take the transaction at once.
     */
    async store(
      userId: string,
      deviceId: string | undefined,
      batch: NewSample[],
      options: {
        group?: GroupCommit<GroupUpload, GroupStored>
        changes?: UploadChanges
        closedBefore?: number
      } = {},
    ): Promise<{ accepted: number; duplicates: number }> {
      let blocked = false
      const closed =
        options.closedBefore !== undefined && batch.some((s) => s.at < floorHour(options.closedBefore as number))
      if (options.group && batch.length > 0 && !closed) {
        const stored = await options.group.submit({
          userId,
          device: deviceId ?? NO_DEVICE,
          samples: batch,
          changes: options.changes,
        })
        if (!stored.blocked) return { accepted: stored.accepted, duplicates: batch.length - stored.accepted }
        blocked = true
      }
      return db.transaction((tx) =>
        this.ingest(userId, deviceId, batch, tx, options.changes, blocked, options.closedBefore),
      )
    },

    /**
     * Raw samples of one type in [from, to), in (timestamp, device) order, after the keyset `after`: the first
     * `limit` of the row table and of the blocks merged. Blocks are decoded in key order until they hold `limit`
     * samples before the next undecoded block's hour; so a page decodes about a page of samples.
     */
    async list(
      userId: string,
      q: { type: MeasurementTypeName; from?: Date; to?: Date; limit: number; after?: { at: Date; deviceId: string } },
    ): Promise<SampleRow[]> {
      // One snapshot for the rows and the blocks: a compaction committing between the two reads would show a
      // sample twice or not at all.
      return readSnapshot(db, async (tx) => {
        const rows = await queryRows<SampleRow>(
          tx,
          sql`
            select type, ${iso(sql`measured_at`)} as timestamp, nullif(device_id, '') as device_id, value
              from measurements
             where user_id = ${userId} and type = ${q.type}
               ${q.from ? sql`and measured_at >= ${q.from.toISOString()}::timestamptz` : sql``}
               ${q.to ? sql`and measured_at < ${q.to.toISOString()}::timestamptz` : sql``}
               ${q.after ? sql`and (measured_at, device_id) > (${q.after.at.toISOString()}::timestamptz, ${q.after.deviceId})` : sql``}
             -- Qualified: the output column device_id (null for '') must not be the sort key; the keyset uses ''.
             -- device_id has collation "C" (migration 0021): code point order, the order of the blocks' merge.
             order by measurements.measured_at, measurements.device_id
             limit ${q.limit}`,
        )
        const lower = Math.max(q.from?.getTime() ?? EARLIEST, q.after?.at.getTime() ?? EARLIEST)
        const upper = q.to?.getTime() ?? LATEST
        const after: StoredSample | undefined = q.after
          ? { type: q.type, deviceId: q.after.deviceId, at: q.after.at.getTime(), value: 0 }
          : undefined
        const fromBlocks: StoredSample[] = []
        let blocksDoneBefore = LATEST
        let cursor: { hour: number; deviceId: string } | undefined
        for (;;) {
          const batch = await blocksIn(
            tx,
            userId,
            [q.type],
            lower,
            upper,
            cursor
              ? sql`and (hour, device_id) > (${new Date(cursor.hour).toISOString()}::timestamptz, ${cursor.deviceId})`
              : sql``,
            LIST_BLOCK_BATCH,
          )
          for (const x of samplesOf(batch, lower, upper)) {
            if (!after || compareSamples(x, after) > 0) fromBlocks.push(x)
          }
          if (batch.length < LIST_BLOCK_BATCH) break
          const last = batch[batch.length - 1]
          cursor = { hour: hourOfRow(last), deviceId: last.device_id }
          // Blocks not read yet start at this hour or later.
          blocksDoneBefore = cursor.hour
          if (fromBlocks.filter((x) => x.at < blocksDoneBefore).length >= q.limit) break
          blocksDoneBefore = LATEST
        }
        if (fromBlocks.length === 0) return rows
        const lastRow = rows.length === q.limit ? rows[rows.length - 1] : undefined
        const lastRowKey: StoredSample | undefined = lastRow
          ? { type: q.type, deviceId: lastRow.device_id ?? NO_DEVICE, at: Date.parse(lastRow.timestamp), value: 0 }
          : undefined
        const merged = [
          ...rows.map((r) => ({
            key: { type: q.type, deviceId: r.device_id ?? NO_DEVICE, at: Date.parse(r.timestamp), value: r.value },
            row: r,
          })),
          ...fromBlocks
            .filter((x) => x.at < blocksDoneBefore && (!lastRowKey || compareSamples(x, lastRowKey) <= 0))
            .map((x) => ({
              key: x,
              row: {
                type: x.type,
                timestamp: new Date(x.at).toISOString(),
                device_id: x.deviceId === NO_DEVICE ? null : x.deviceId,
                value: x.value,
              },
            })),
        ]
        merged.sort((a, b) => compareSamples(a.key, b.key))
        return merged.slice(0, q.limit).map((m) => m.row)
      })
    },

    /** avg/min/max/count/sum of one type per bucket over [from, to); empty buckets are left out. */
    async aggregate(
      userId: string,
      q: { type: MeasurementTypeName; from: Date; to: Date; bucket: Bucket; timeZone: string },
    ): Promise<AggregateRow[]> {
      const { bucket, timeZone: tz } = q
      const fromMs = q.from.getTime()
      const toMs = q.to.getTime()
      // One snapshot for the blocks decoded here and the statement reading the row table and the rollup.
      return readSnapshot(db, async (tx) => {
        if (bucket === '1d') return dayBuckets(tx, userId, q.type, fromMs, toMs, tz)
        const source =
          bucket === '1m'
            ? await minuteSource(tx, userId, [q.type], fromMs, toMs)
            : await rollupSource(tx, userId, [q.type], fromMs, toMs, bucket === '5m' ? '5m' : '15m')
        return queryRows<AggregateRow>(
          tx,
          sql`
        with m as (${source}),
        b as (
          select ${bucketStart(bucket, tz)} as start, sum(count)::int as count, sum(sum) as sum,
                 min(min) as min, max(max) as max
            from m group by 1
        )
        select ${iso(sql`b.start`)} as start, ${iso(bucketEnd(bucket, tz))} as "end",
               count, sum / count as avg, min, max, sum
          from b order by b.start`,
        )
      })
    },

    /**
     * Removes the caller's samples in [from, to) (of one type, or all), and brings the rollup back in step:
     * the quarter-hours wholly inside the range are dropped, the (at most two) edge quarter-hours recomputed
     * from what is left (where raw retention left only the rollup, edge quarter-hours go whole: they cannot
     * be split without their samples). Samples inside compacted blocks are removed by rewriting those blocks (an hour each
     * at most two partly, the rest dropped whole). Runs in the caller's transaction, under the user's
     * exclusive lock (blocks.ts).
     */
    async deleteRange(
      userId: string,
      q: { type?: MeasurementTypeName; from: Date; to: Date },
      tx: DbOrTx,
    ): Promise<number> {
      const types = q.type ? [q.type] : TYPE_NAMES
      const fromMs = q.from.getTime()
      const toMs = q.to.getTime()
      await lockUser(tx, userId, 'exclusive')
      // What the rollup counts in the quarter-hours touched, before and after: past a raw retention horizon
      // (retention.ts) the rollup is all that is left, and those samples are deleted (and counted) with it.
      const rollupCount = async () => {
        const [row] = await queryRows<{ n: number }>(
          tx,
          sql`select coalesce(sum(count), 0)::int as n from measurement_quarters
               where user_id = ${userId} and type = any(${typeArray(types)})
                 and quarter >= ${ts(floorTo(fromMs, QUARTER_MS))} and quarter < ${ts(ceilTo(toMs, QUARTER_MS))}`,
        )
        return row?.n ?? 0
      }
      const before = await rollupCount()
      const fromBlocks = await deleteFromBlocks(tx, userId, types, fromMs, toMs)
      const res = await queryRows<{ deleted: number }>(
        tx,
        sql`
        with d as (
          delete from measurements
           where user_id = ${userId} and type = any(${typeArray(types)})
             and measured_at >= ${ts(fromMs)} and measured_at < ${ts(toMs)}
          returning 1
        )
        select count(*)::int as deleted from d`,
      )
      const deleted = (res[0]?.deleted ?? 0) + fromBlocks
      if (deleted === 0 && before === 0) return 0
      await tx.execute(sql`
        delete from measurement_quarters
         where user_id = ${userId} and type = any(${typeArray(types)})
           and quarter >= ${ts(floorTo(fromMs, QUARTER_MS))} and quarter < ${ts(toMs)}`)
      const edges = [...new Set([floorTo(fromMs, QUARTER_MS), floorTo(toMs, QUARTER_MS)])]
      await tx.execute(sql`
        insert into measurement_quarters as m (${ROLLUP_COLUMNS})
        ${rollupOf(
          userId,
          await rawSamplesIn(
            tx,
            userId,
            types,
            edges.map((e) => [e, e + QUARTER_MS]),
          ),
        )}
        on conflict (user_id, type, quarter) do update set ${REPLACE_ROLLUP}`)
      return Math.max(deleted, before - (await rollupCount()))
    },

    /**
     * Per type with data in [from, to): count, avg, min, max and sum (sum is the total for additive types
     * such as steps and active_energy). Reads the 15-minute rollup, raw rows only for partial edge quarter-hours.
     */
    async windowSummary(
      userId: string,
      from: Date,
      to: Date,
    ): Promise<Partial<Record<MeasurementTypeName, WindowStat>>> {
      if (to.getTime() <= from.getTime()) return {}
      const res = await readSnapshot(db, async (tx) =>
        queryRows<WindowStat & { type: MeasurementTypeName }>(
          tx,
          sql`
        with m as (${await rollupSource(tx, userId, TYPE_NAMES, from.getTime(), to.getTime(), '15m')})
        select type, sum(count)::int as count, sum(sum) / sum(count) as avg, min(min) as min, max(max) as max,
               sum(sum) as sum
          from m group by type order by type`,
        ),
      )
      const out: Partial<Record<MeasurementTypeName, WindowStat>> = {}
      for (const { type, ...stat } of res) {
        out[type] = stat
      }
      return out
    },

    /** The time (ms) of the user's first sample of a type at or after `from`, or null when there is none. */
    async nextSampleAt(userId: string, type: MeasurementTypeName, from: Date): Promise<number | null> {
      return readSnapshot(db, async (tx) => {
        const [row] = await queryRows<{ at: string }>(
          tx,
          sql`
          select ${iso(sql`measured_at`)} as at from measurements
           where user_id = ${userId} and type = ${type} and measured_at >= ${ts(from.getTime())}
           order by measured_at limit 1`,
        )
        const rowAt = row ? Date.parse(row.at) : null
        // The first block holding a sample at or after `from` (its first sample, or a later one of the hour).
        const [block] = await blocksIn(tx, userId, [type], from.getTime(), rowAt ?? LATEST, sql``, 1)
        if (!block) return rowAt
        const [first] = samplesOf([block], from.getTime(), LATEST).sort(compareSamples)
        return rowAt === null || (first && first.at < rowAt) ? (first?.at ?? rowAt) : rowAt
      })
    },

    /** The first and last sample time of a type (ms), or null when the user has none. */
    async extent(userId: string, type: MeasurementTypeName): Promise<{ first: number; last: number } | null> {
      const [row] = await queryRows<{ first: string | null; last: string | null }>(
        db,
        sql`
        select ${iso(sql`min(at)`)} as first, ${iso(sql`max(at)`)} as last from (
          select min(measured_at) as at from measurements where user_id = ${userId} and type = ${type}
          union all select max(measured_at) from measurements where user_id = ${userId} and type = ${type}
          union all select min(first_at) from measurement_blocks where user_id = ${userId} and type = ${type}
          union all select max(last_at) from measurement_blocks where user_id = ${userId} and type = ${type}
        ) x`,
      )
      return row?.first && row.last ? { first: Date.parse(row.first), last: Date.parse(row.last) } : null
    },

    /**
     * The samples of a state-valued type (sleep_stage) as intervals of one state per device: a sample holds
     * until the device's next sample of the type, at most `maxHoldMinutes`; the last sample of a device (in
     * [from, to)) has no end and gives none. Touching intervals of the same state are merged, so a device
     * sending its stage every 30 s answers one row per stage change; `lastSample` is the time of the last
     * sample merged into the row. Order: device, start.
     */
    async stateIntervals(
      userId: string,
      q: { type: MeasurementTypeName; from: Date; to: Date; maxHoldMinutes: number },
    ): Promise<Array<{ deviceId: string; value: number; start: number; end: number; lastSample: number }>> {
      // One snapshot for the blocks decoded here and the statement reading the row table.
      const rows = await readSnapshot(db, async (tx) =>
        queryRows<{
          device_id: string
          value: number
          start: string
          end: string
          last_sample: string
        }>(
          tx,
          sql`
        with s as (
          select device_id, measured_at, value,
                 lead(measured_at) over (partition by device_id order by measured_at) as next_at
            from (${await rawSamples(tx, userId, [q.type], q.from.getTime(), q.to.getTime())}) r
        ),
        seg as (
          select device_id, value, measured_at as start_at,
                 least(next_at, measured_at + make_interval(mins => ${q.maxHoldMinutes})) as end_at
            from s where next_at is not null
        ),
        marked as (
          select *, case when lag(end_at) over w = start_at and lag(value) over w = value then 0 else 1 end as brk
            from seg window w as (partition by device_id order by start_at)
        ),
        grouped as (
          select *, sum(brk) over (partition by device_id order by start_at) as grp from marked
        )
        select device_id, value, ${iso(sql`min(start_at)`)} as start, ${iso(sql`max(end_at)`)} as "end",
               ${iso(sql`max(start_at)`)} as last_sample
          from grouped group by device_id, value, grp
         order by device_id, min(start_at)`,
        ),
      )
      return rows.map((r) => ({
        deviceId: r.device_id,
        value: r.value,
        start: Date.parse(r.start),
        end: Date.parse(r.end),
        lastSample: Date.parse(r.last_sample),
      }))
    },

    /**
     * For each window [start, end) and type: the mean over the minutes that begin inside it (all devices),
     * and the lowest one-minute mean. Reads the raw samples of those minutes (the rollup has no minutes);
     * one query for all windows.
     */
    async windowMinuteStats(
      userId: string,
      types: readonly MeasurementTypeName[],
      windows: Array<{ start: number; end: number }>,
    ): Promise<Array<Partial<Record<MeasurementTypeName, { avg: number; lowest_minute: number }>>>> {
      const out = windows.map(
        () => ({}) as Partial<Record<MeasurementTypeName, { avg: number; lowest_minute: number }>>,
      )
      if (windows.length === 0) return out
      // The minutes that begin inside [start, end) hold the samples of [ceil(start), ceil(end)).
      const starts = sql.param(windows.map((w) => new Date(ceilTo(w.start, MINUTE_MS)).toISOString()))
      const ends = sql.param(windows.map((w) => new Date(ceilTo(w.end, MINUTE_MS)).toISOString()))
      // One snapshot for the blocks decoded here and the statement reading the row table.
      const rows = await readSnapshot(db, async (tx) => {
        const compacted = await blockMinutesOfWindows(
          tx,
          userId,
          types,
          windows.map((w) => ({ start: ceilTo(w.start, MINUTE_MS), end: ceilTo(w.end, MINUTE_MS) })),
        )
        return queryRows<{ i: number; type: MeasurementTypeName; avg: number; lowest_minute: number }>(
          tx,
          sql`
        with w as (
          select * from unnest(${starts}::timestamptz[], ${ends}::timestamptz[]) with ordinality as w(s, e, i)
        ),
        per_minute as (
          -- Lateral: one index range scan per window, not one pass over all windows per sample.
          select (w.i - 1)::int as i, r.type, r.minute, r.count, r.sum
            from w cross join lateral (
              select type, ${minuteOf(sql`measured_at`)} as minute, count(*)::int8 as count, sum(value) as sum
                from measurements
               where user_id = ${userId} and type = any(${typeArray(types)})
                 and measured_at >= w.s and measured_at < w.e
               group by 1, 2
            ) r
          union all
          select * from unnest(${sql.param(compacted.map((c) => c.i))}::int[],
                               ${sql.param(compacted.map((c) => c.type))}::text[],
                               ${sql.param(compacted.map((c) => new Date(c.minute).toISOString()))}::timestamptz[],
                               ${sql.param(compacted.map((c) => c.count))}::int8[],
                               ${sql.param(compacted.map((c) => c.sum))}::float8[])
        ),
        -- A minute may have samples in a block and late ones in the row table.
        merged as (
          select i, type, minute, sum(count)::float8 as count, sum(sum) as sum from per_minute group by 1, 2, 3
        )
        select i, type, sum(sum) / sum(count) as avg, min(sum / count) as lowest_minute
          from merged group by i, type`,
        )
      })
      for (const r of rows) {
        out[r.i][r.type] = { avg: r.avg, lowest_minute: r.lowest_minute }
      }
      return out
    },

    /** Statistics of each calendar day fromDate..toDate (YYYY-MM-DD, inclusive) in the user's time zone. */
    async daily(userId: string, fromDate: string, toDate: string, timeZone?: string): Promise<DailyStatistics[]> {
      const tz = timeZone ?? (await users.timeZone(userId))
      const res = await queryRows<DailyStatistics>(
        db,
        sql`
        with ${dailyCore(userId, tz, fromDate, toDate)}
        select to_char(day, 'YYYY-MM-DD') as date, resting_heart_rate,
               hr_s / hr_n as heart_rate_avg, heart_rate_min, heart_rate_max,
               ${sql.join(
                 AVERAGED.map((t) => sql`${sql.raw(`${t}_s / ${t}_n`)} as ${sql.raw(`${t}_avg`)}`),
                 sql`, `,
               )},
               steps, distance, active_energy
          from daily order by day`,
      )
      return res
    },

    /**
     * The statistics over two periods of local days (current and previous): averages weighted by samples,
     * resting heart rate as the mean of the days' values, extremes over the period, sums as totals.
     */
    async periods(
      userId: string,
      tz: string,
      current: { from: string; to: string },
      previous: { from: string; to: string },
    ): Promise<Record<'current' | 'previous', Omit<DailyStatistics, 'date'> & { days_with_data: number }>> {
      const res = await queryRows<{ period: 'current' | 'previous' }>(
        db,
        sql`
        with ${dailyCore(userId, tz, previous.from, current.to)}
        select case when day >= ${current.from}::date then 'current' else 'previous' end as period,
               avg(resting_heart_rate) as resting_heart_rate,
               sum(hr_s) / sum(hr_n) as heart_rate_avg, min(heart_rate_min) as heart_rate_min,
               max(heart_rate_max) as heart_rate_max,
               ${sql.join(
                 AVERAGED.map((t) => sql`${sql.raw(`sum(${t}_s) / sum(${t}_n)`)} as ${sql.raw(`${t}_avg`)}`),
                 sql`, `,
               )},
               sum(steps) as steps, sum(distance) as distance, sum(active_energy) as active_energy,
               count(*) filter (where hr_n is not null or steps is not null or active_energy is not null
                 ${sql.join(
                   AVERAGED.map((t) => sql.raw(`or ${t}_n is not null`)),
                   sql` `,
                 )} or distance is not null)::int as days_with_data
          from daily
         where day between ${previous.from}::date and ${previous.to}::date
            or day between ${current.from}::date and ${current.to}::date
         group by 1`,
      )
      const rows = res
      const empty = () =>
        ({
          ...(Object.fromEntries(STATISTIC_KEYS.map((k) => [k, null])) as Record<StatisticKey, null>),
          days_with_data: 0,
        }) as Omit<DailyStatistics, 'date'> & { days_with_data: number }
      const out = { current: empty(), previous: empty() }
      for (const { period, ...r } of rows) Object.assign(out[period], r)
      return out
    },
  }
}

export const STATISTIC_KEYS: StatisticKey[] = [
  'resting_heart_rate',
  'heart_rate_avg',
  'heart_rate_min',
  'heart_rate_max',
  'hrv_rmssd_avg',
  'skin_temperature_avg',
  'spo2_avg',
  'respiratory_rate_avg',
  'stress_avg',
  'steps',
  'distance',
  'active_energy',
]

export type MeasurementRepository = ReturnType<typeof createMeasurementRepository>

/**
 * Every sample of a user as plain JSON (snake_case) for the account export, in key order (type, then time and
 * device), read in pages of the merged row table and blocks, so millions of rows never sit in memory at once.
 */
export async function* exportRows(db: Db, userId: string, batchSize = 5000): AsyncGenerator<SampleRow> {
  const repo = createMeasurementRepository(db)
  const present = await queryRows<{ type: MeasurementTypeName }>(
    db,
    sql`
    select t.type from unnest(${typeArray(TYPE_NAMES)}) as t(type)
     where exists (select 1 from measurements m where m.user_id = ${userId} and m.type = t.type)
        or exists (select 1 from measurement_blocks b where b.user_id = ${userId} and b.type = t.type)
     order by t.type`,
  )
  for (const { type } of present) {
    let after: { at: Date; deviceId: string } | undefined
    for (;;) {
      const rows = await repo.list(userId, { type, limit: batchSize, after })
      yield* rows
      if (rows.length < batchSize) break
      const last = rows[rows.length - 1]
      after = { at: new Date(last.timestamp), deviceId: last.device_id ?? NO_DEVICE }
    }
  }
}

export { CATALOGUE }
