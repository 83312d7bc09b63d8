import { sql } from 'drizzle-orm'
import { check, date, index, integer, pgTable, primaryKey, real, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/**
 * An account. `email` is stored trimmed and lower-cased; it is unique across accounts through `user_emails`
 * (case-insensitive, since both hold the normalised address). Keyed by id (Citus: distributed by it).
 */
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
    index('users_created_idx').on(t.createdAt, t.id),
    check('users_email_normalised', sql`${t.email} = lower(btrim(${t.email}))`),
    check('users_sleep_time_goal_range', sql`${t.sleepTimeGoal} between 0 and 86400`),
  ],
)

/**
 * Which account an e-mail address belongs to: register, login, password reset, verification and e-mail change
 * look the address up here first, then read the user by id; the primary key keeps one account per address.
 * Written with the user, moved by a confirmed e-mail change and deleted with the account in the same
 * transaction (routes/user/repository.ts); no foreign key, as on Citus, where it is distributed by email.
 */
export const userEmails = pgTable(
  'user_emails',
  {
    email: text('email').primaryKey(),
    userId: uuid('user_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [check('user_emails_email_normalised', sql`${t.email} = lower(btrim(${t.email}))`)],
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
