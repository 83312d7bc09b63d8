import { sql } from 'drizzle-orm'
import { check, index, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/** A wellness check-in: how the user felt at one moment. Scales are documented in routes/checkin/schemas.ts. */
export const checkins = pgTable(
  'checkins',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    mood: smallint('mood').notNull(),
    energy: smallint('energy'),
    stress: smallint('stress'),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    note: text('note'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('checkins_user_at_idx').on(t.userId, t.at, t.id),
    check('checkins_mood_range', sql`${t.mood} between 1 and 5`),
    check('checkins_energy_range', sql`${t.energy} between 1 and 5`),
    check('checkins_stress_range', sql`${t.stress} between 1 and 5`),
    check('checkins_tags_bounded', sql`cardinality(${t.tags}) <= 10`),
    check('checkins_note_length', sql`char_length(${t.note}) <= 2000`),
  ],
)
