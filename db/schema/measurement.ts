import { sql } from 'drizzle-orm'
import {
  check,
  customType,
  doublePrecision,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'
import { TYPE_NAMES } from './measurement-catalogue.ts'
import { users } from './user.ts'

const typeList = sql.raw(TYPE_NAMES.map((t) => `'${t}'`).join(', '))

/**
 * Raw samples as the watch sent them, one row per (user, type, timestamp, device).
 *
 * Layout for the query shapes: every read is "one user, one type, a time range" (raw pages, rollup
 * rebuilds at the edges of a range, export), so the primary key (user_id, type, measured_at, device_id)
 * is the only index: it answers those reads as one contiguous index range, and it is the idempotency key
 * (a re-sent sample hits it and is skipped by ON CONFLICT DO NOTHING).
 * `device_id` '' means "no device given": a primary key column cannot be null.
 *
 * BRIN: not used. Rows of many users are interleaved in arrival order, so a BRIN range on measured_at
 * narrows nothing for a per-user query.
 *
 * This is the recent part of the store: the compaction job (routes/measurement/compaction.ts) moves each closed
 * hour into measurement_blocks, so the table holds the last hour or two of each active user and late samples
 * waiting for their block. Partitioned by month on measured_at (migration 0021; routes/measurement/partitions.ts
 * creates the months, drizzle-kit cannot express partitions); device_id has collation "C" there, so the key's
 * order is the code point order the server merges rows and blocks in.
 */
export const measurements = pgTable(
  'measurements',
  {
    // No foreign key to users (issue 23b): its check ran once per inserted row, a fifth of an upload statement's
    // execution for live minutes. A sample cannot outlive its account: account deletion deletes the rows
    // (routes/account/deletion.ts), and an upload racing it fails on the rollup's foreign key (one check per
    // quarter-hour), which waits for the deletion's lock on the user row.
    userId: uuid('user_id').notNull(),
    type: text('type').notNull(),
    measuredAt: timestamp('measured_at', { withTimezone: true, precision: 3 }).notNull(),
    deviceId: text('device_id').notNull().default(''),
    value: doublePrecision('value').notNull(),
  },
  (t) => [
    primaryKey({ name: 'measurements_pkey', columns: [t.userId, t.type, t.measuredAt, t.deviceId] }),
    check('measurements_type_known', sql`${t.type} in (${typeList})`),
    check('measurements_device_id_length', sql`length(${t.deviceId}) <= 64`),
  ],
)

/**
 * 15-minute rollup of measurements (all devices together), kept current by the same statement or
 * transaction that inserts or deletes raw rows: a batch adds its new rows' count/sum/min/max to their
 * quarter-hours (re-sent rows are not new, so they add nothing), a delete recomputes the quarter-hours it
 * touched from what is left. Aggregates of 15m..1d buckets and the statistics read these rows: a year is
 * 35,040 rows per type. Every zone's offset from UTC is a multiple of 15 minutes (:30 and :45 zones
 * included), so UTC quarter-hours are aligned with every zone's hours and days and day buckets stay exact.
 *
 * Finer grain where it is needed: per UTC-aligned 5-minute window w of the quarter-hour (0, 1, 2) its
 * count, sum, min and max (`wN_*`; min and max null when the window is empty), so 5m buckets read the rollup
 * too, and `minute_mask`, bit i set when minute i of the quarter-hour has samples: resting heart rate is the
 * lowest mean of a day's 5-minute windows with samples in at least 3 of their minutes. All of them are
 * sums, extremes or ors, so ingest keeps them current incrementally like the rest.
 */
export const measurementQuarters = pgTable(
  'measurement_quarters',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    quarter: timestamp('quarter', { withTimezone: true, precision: 3 }).notNull(),
    count: integer('count').notNull(),
    sum: doublePrecision('sum').notNull(),
    min: doublePrecision('min').notNull(),
    max: doublePrecision('max').notNull(),
    w0Count: integer('w0_count').notNull(),
    w0Sum: doublePrecision('w0_sum').notNull(),
    w0Min: doublePrecision('w0_min'),
    w0Max: doublePrecision('w0_max'),
    w1Count: integer('w1_count').notNull(),
    w1Sum: doublePrecision('w1_sum').notNull(),
    w1Min: doublePrecision('w1_min'),
    w1Max: doublePrecision('w1_max'),
    w2Count: integer('w2_count').notNull(),
    w2Sum: doublePrecision('w2_sum').notNull(),
    w2Min: doublePrecision('w2_min'),
    w2Max: doublePrecision('w2_max'),
    minuteMask: integer('minute_mask').notNull(),
  },
  (t) => [
    primaryKey({ name: 'measurement_quarters_pkey', columns: [t.userId, t.type, t.quarter] }),
    check('measurement_quarters_count_positive', sql`${t.count} > 0`),
  ],
)

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v),
})

/**
 * Compacted samples: every sample of one user, type and device in one UTC hour, encoded as one value
 * (routes/measurement/block-codec.ts: delta-of-delta timestamps, scaled-integer or XOR-float values, DEFLATE).
 * The compaction job (routes/measurement/compaction.ts) rewrites each closed hour of the row table into its
 * block and deletes the rows it replaced, in one transaction; a sample arriving later for that hour lands
 * in the row table again and is merged into the block by the next run. Reads merge blocks and rows.
 * An hour of 1 Hz heart rate is one row of about a kilobyte here instead of 3,600 rows and index entries.
 * The key leads with user_id and orders like the row table's (time, then device), so one user's range is
 * one index range. `count`, `first_at` and `last_at` answer extents and next-sample lookups without decoding.
 * Partitioned by month on hour like measurements (migration 0021), device_id with collation "C".
 */
export const measurementBlocks = pgTable(
  'measurement_blocks',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    hour: timestamp('hour', { withTimezone: true, precision: 3 }).notNull(),
    deviceId: text('device_id').notNull().default(''),
    count: integer('count').notNull(),
    firstAt: timestamp('first_at', { withTimezone: true, precision: 3 }).notNull(),
    lastAt: timestamp('last_at', { withTimezone: true, precision: 3 }).notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [
    primaryKey({ name: 'measurement_blocks_pkey', columns: [t.userId, t.type, t.hour, t.deviceId] }),
    check('measurement_blocks_count_positive', sql`${t.count} > 0`),
  ],
)
