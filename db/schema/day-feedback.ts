import { sql } from 'drizzle-orm'
import { check, date, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/** The user's word on one calendar day (in their time zone): one row per user and day. */
export const dayFeedback = pgTable(
  'day_feedback',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    day: date('day').notNull(),
    mood: smallint('mood'),
    rating: smallint('rating'),
    note: text('note'),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'day_feedback_pk', columns: [t.userId, t.day] }),
    check('day_feedback_mood_range', sql`${t.mood} between 1 and 5`),
    check('day_feedback_rating_range', sql`${t.rating} between 1 and 10`),
    check('day_feedback_tags_bounded', sql`cardinality(${t.tags}) <= 10`),
    check('day_feedback_note_length', sql`char_length(${t.note}) <= 2000`),
    check('day_feedback_not_empty', sql`${t.mood} is not null or ${t.rating} is not null or ${t.note} is not null`),
  ],
)
