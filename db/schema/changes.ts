import { sql } from 'drizzle-orm'
import { bigint, check, index, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/**
 * Each user's position in their own change log. `last_seq` is the seq of the user's latest change; the
 * row is updated (hence locked) by every transaction that records a change of that user, so a user's
 * changes take their seq in commit order (see plugins/changes.ts). `pruned_seq`: every seq up to it was
 * removed by retention, so a cursor below it cannot be served (`410 cursor_expired`).
 */
export const changeCursors = pgTable('change_cursors', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  prunedSeq: bigint('pruned_seq', { mode: 'number' }).notNull().default(0),
})

/**
 * The change log: one row per change of a user's data, written in the transaction of the change.
 * A row names what changed (an object id, or a measurement time range with its sample count), never
 * the data itself. Keyed by (user_id, seq) so the schema distributes by user.
 */
export const changeLog = pgTable(
  'change_log',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    type: text('type').notNull(),
    action: text('action', { enum: ['created', 'updated', 'deleted'] }).notNull(),
    objectId: text('object_id'),
    /** Measurements: the sample type (null = every type, for a range delete), [from, to] and the count. */
    rangeType: text('range_type'),
    rangeFrom: timestamp('range_from', { withTimezone: true, precision: 3 }),
    rangeTo: timestamp('range_to', { withTimezone: true, precision: 3 }),
    rangeCount: integer('range_count'),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.seq] }),
    index('change_log_at_idx').on(t.at),
    check('change_log_id_or_range', sql`(${t.objectId} is null) <> (${t.rangeFrom} is null)`),
  ],
)
