import { sql } from 'drizzle-orm'
import {
  boolean,
  check,
  date,
  foreignKey,
  index,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/**
 * An insight produced by one rule for one period. The unique key (user, kind, period) makes generation
 * idempotent: running the rules again, concurrently or not, adds nothing already there.
 */
export const insights = pgTable(
  'insights',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    periodStart: date('period_start').notNull(),
    periodEnd: date('period_end').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    data: jsonb('data').$type<Record<string, number | null>>().notNull(),
    /**
     * What the insight was computed from: the kinds of data (`measurement:heart_rate`, `checkin`,
     * `day_feedback`, `activity` …) and the local calendar days read. A change of such data on those days
     * withdraws the insight until the rules compute it again.
     */
    sources: text('sources').array().notNull().default(sql`'{}'::text[]`),
    sourceFrom: date('source_from').notNull(),
    sourceTo: date('source_to').notNull(),
    /** Set when its data changed; hidden from owner and viewers until a run of the rules recomputes it. */
    withdrawnAt: timestamp('withdrawn_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    /** Created or recomputed (`updated_since` of the list). */
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md); feedback and reflections refer to it whole.
    primaryKey({ columns: [t.userId, t.id] }),
    uniqueIndex('insights_rule_period_key').on(t.userId, t.kind, t.periodStart, t.periodEnd),
    index('insights_user_created_idx').on(t.userId, t.createdAt, t.id),
    // The data-change lookup: a user's live insights by the days they were computed from.
    index('insights_user_sources_idx')
      .on(t.userId, t.sourceTo)
      .where(sql`${t.withdrawnAt} is null`),
    check('insights_period_order', sql`${t.periodEnd} >= ${t.periodStart}`),
  ],
)

/** The user's verdict on an insight: at most one per insight. */
export const insightFeedback = pgTable(
  'insight_feedback',
  {
    insightId: uuid('insight_id').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    helpful: boolean('helpful').notNull(),
    comment: text('comment'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.insightId] }),
    foreignKey({
      name: 'insight_feedback_insight_fk',
      columns: [t.userId, t.insightId],
      foreignColumns: [insights.userId, insights.id],
    }).onDelete('cascade'),
    check('insight_feedback_comment_length', sql`char_length(${t.comment}) <= 1000`),
  ],
)

/** Free-text reflections on an insight; several per insight. */
export const insightReflections = pgTable(
  'insight_reflections',
  {
    id: uuid('id').notNull().defaultRandom(),
    insightId: uuid('insight_id').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    text: text('text').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.id] }),
    foreignKey({
      name: 'insight_reflections_insight_fk',
      columns: [t.userId, t.insightId],
      foreignColumns: [insights.userId, insights.id],
    }).onDelete('cascade'),
    index('insight_reflections_insight_idx').on(t.insightId, t.createdAt, t.id),
    index('insight_reflections_user_idx').on(t.userId),
    check('insight_reflections_text_length', sql`char_length(${t.text}) between 1 and 5000`),
  ],
)
