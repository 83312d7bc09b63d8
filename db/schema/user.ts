import { sql } from 'drizzle-orm'
import {
  check,
  date,
  index,
  integer,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'

/** An account. `email` is stored trimmed and lower-cased, so the unique index is case-insensitive. */
export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: text('role', { enum: ['user', 'admin'] })
      .notNull()
      .default('user'),
    firstName: text('first_name').notNull(),
    lastName: text('last_name').notNull(),
    tocAcceptedAt: timestamp('toc_accepted_at', { withTimezone: true, precision: 3 }).notNull(),
    privacyPolicyAcceptedAt: timestamp('privacy_policy_accepted_at', { withTimezone: true, precision: 3 }).notNull(),
    emailVerifiedAt: timestamp('email_verified_at', { withTimezone: true, precision: 3 }),
    /**
     * An e-mail change waiting for the code sent to the new address (PATCH /v1/users/me). `email` stays the
     * login address until the change is confirmed; not unique, since an address that is taken is never told.
     */
    pendingEmail: text('pending_email'),
    pendingEmailExpiresAt: timestamp('pending_email_expires_at', { withTimezone: true, precision: 3 }),
    dateOfBirth: date('date_of_birth'),
    sex: text('sex', { enum: ['male', 'female'] }),
    weight: real('weight'),
    height: real('height'),
    sleepTimeGoal: integer('sleep_time_goal').notNull().default(28800),
    tipAudiences: text('tip_audiences').array().notNull().default(sql`'{}'::text[]`),
    timeZone: text('time_zone').notNull().default('UTC'),
    disabledAt: timestamp('disabled_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('users_email_key').on(t.email),
    index('users_created_idx').on(t.createdAt, t.id),
    check('users_email_normalised', sql`${t.email} = lower(btrim(${t.email}))`),
    check('users_sleep_time_goal_range', sql`${t.sleepTimeGoal} between 0 and 86400`),
  ],
)

/** Account settings as key/value (WAVIoT "accounts_settings"); the set of keys is closed in the API schema. */
export const userSettings = pgTable(
  'user_settings',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    value: text('value').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  // A primary key (it was only a unique index): led by user_id, the distribution column on Citus (docs/scaling.md).
  (t) => [primaryKey({ name: 'user_settings_pkey', columns: [t.userId, t.key] })],
)
