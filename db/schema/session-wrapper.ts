import { sql } from 'drizzle-orm'
import { check, index, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/**
 * Activities and intentions ("sessions wrappers"): one table, one `family` column, so the two domains
 * share one implementation and the one-running-session rule is a single partial unique index.
 * Family-specific columns are null for the other family (checked below).
 */
export const journalSessions = pgTable(
  'journal_sessions',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    family: text('family', { enum: ['activity', 'intention'] }).notNull(),
    kind: text('kind').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true, precision: 3 }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true, precision: 3 }),
    notes: text('notes'),
    /** activity: perceived exertion, Borg CR10 (0..10). */
    perceivedExertion: smallint('perceived_exertion'),
    /** intention: how it went, 1..5, and in words. */
    outcomeRating: smallint('outcome_rating'),
    outcomeNote: text('outcome_note'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('journal_sessions_user_started_idx').on(t.userId, t.family, t.startedAt, t.id),
    uniqueIndex('journal_sessions_one_running').on(t.userId, t.family).where(sql`${t.endedAt} is null`),
    check('journal_sessions_family', sql`${t.family} in ('activity', 'intention')`),
    check('journal_sessions_kind', sql`${t.kind} ~ '^[a-z][a-z_]{0,31}$'`),
    check('journal_sessions_ends_after_start', sql`${t.endedAt} is null or ${t.endedAt} >= ${t.startedAt}`),
    check('journal_sessions_notes_length', sql`char_length(${t.notes}) <= 2000`),
    check('journal_sessions_outcome_note_length', sql`char_length(${t.outcomeNote}) <= 2000`),
    check('journal_sessions_exertion_range', sql`${t.perceivedExertion} between 0 and 10`),
    check('journal_sessions_outcome_range', sql`${t.outcomeRating} between 1 and 5`),
    check(
      'journal_sessions_family_fields',
      sql`(${t.family} = 'activity' or ${t.perceivedExertion} is null) and (${t.family} = 'intention' or (${t.outcomeRating} is null and ${t.outcomeNote} is null))`,
    ),
  ],
)
