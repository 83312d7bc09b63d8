import { sql } from 'drizzle-orm'
import { check, doublePrecision, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'
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
 * narrows nothing for a per-user query; it would only help cross-user sweeps (retention), which we don't run.
 * Partitioning by time: not yet. Reads of long ranges go to measurement_minutes, never to this table, so
 * partitions would not speed them up; what they would buy is cheap retention (drop a month) and smaller
 * vacuums, at the price of a job creating future partitions, and drizzle-kit cannot express them. The key
 * already contains measured_at, so converting to monthly range partitions later needs no key change.
 */
export const measurements = pgTable(
  'measurements',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
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
 * Per-minute rollup of measurements (all devices together), kept current by the same statement or
 * transaction that inserts or deletes raw rows: a batch adds its new rows' count/sum/min/max to their
 * minutes (re-sent rows are not new, so they add nothing), a delete recomputes the minutes it touched from
 * what is left. Aggregates of 1m..1d buckets and the statistics read these rows: 30 days are 43,200 rows
 * instead of 2.6 M. Minutes (UTC) are aligned with every time zone's hours and days, :30 and :45 offsets
 * included, so day buckets in any zone are exact.
 */
export const measurementMinutes = pgTable(
  'measurement_minutes',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    minute: timestamp('minute', { withTimezone: true, precision: 3 }).notNull(),
    count: integer('count').notNull(),
    sum: doublePrecision('sum').notNull(),
    min: doublePrecision('min').notNull(),
    max: doublePrecision('max').notNull(),
  },
  (t) => [
    primaryKey({ name: 'measurement_minutes_pkey', columns: [t.userId, t.type, t.minute] }),
    check('measurement_minutes_count_positive', sql`${t.count} > 0`),
  ],
)
