import { sql } from 'drizzle-orm'
import {
  boolean,
  doublePrecision,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/** Apps allowed to call the routes that have no user yet (x-auth-token). The secret is kept as SHA-256 only. */
export const clientApps = pgTable('client_apps', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  secretHash: text('secret_hash').notNull(),
  /** The secret before the last rotation, accepted until `previous_secret_expires_at` (apps in the stores). */
  previousSecretHash: text('previous_secret_hash'),
  previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true, precision: 3 }),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  rotatedAt: timestamp('rotated_at', { withTimezone: true, precision: 3 }),
  revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
})

/**
 * One login = one session. Access tokens carry its id (`sid`) and die with it; the refresh token's
 * id is kept so that a second use of the same refresh token is detected (rotation, RFC 6819 5.2.2.3).
 */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    clientId: uuid('client_id').references(() => clientApps.id, { onDelete: 'set null' }),
    /** `admin` only for a session opened by the admin login of an admin; every other login is `user`. */
    role: text('role', { enum: ['user', 'admin'] })
      .notNull()
      .default('user'),
    refreshJti: text('refresh_jti').notNull(),
    previousRefreshJti: text('previous_refresh_jti'),
    rotatedAt: timestamp('rotated_at', { withTimezone: true, precision: 3 }),
    ip: text('ip'),
    userAgent: text('user_agent'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
    revokedReason: text('revoked_reason'),
    /** How the session was opened (sessions list), and what its tokens claim: RFC 8176 `amr`, NIST `aal`, OIDC `auth_time`. */
    authMethod: text('auth_method', { enum: ['password', 'passkey', 'mfa'] })
      .notNull()
      .default('password'),
    amr: text('amr').array().notNull().default(sql`'{pwd}'::text[]`),
    aal: integer('aal').notNull().default(1),
    /** The last time the user proved who they are in this session (login, or a later re-authentication). */
    authTime: timestamp('auth_time', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus: every lookup names the token's `sub` (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('sessions_user_active_idx').on(t.userId, t.lastUsedAt).where(sql`${t.revokedAt} is null`),
    // Revoking a client app ends its live sessions in one statement.
    index('sessions_client_active_idx')
      .on(t.clientId)
      .where(sql`${t.revokedAt} is null`),
  ],
)

/**
 * Every login attempt on an account, successful or not, and every token refresh (authorization history,
 * WAVIoT reference), with the place of a public address as the offline GeoIP database saw it at the time.
 * Attempts on addresses without an account are in `login_attempts_unknown` (Citus: docs/scaling.md).
 */
export const loginAttempts = pgTable(
  'login_attempts',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    type: text('type', { enum: ['login', 'refresh'] })
      .notNull()
      .default('login'),
    success: boolean('success').notNull(),
    reason: text('reason'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    countryCode: text('country_code'),
    region: text('region'),
    city: text('city'),
    latitude: doublePrecision('latitude'),
    longitude: doublePrecision('longitude'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('login_attempts_user_idx').on(t.userId, t.createdAt, t.id),
    index('login_attempts_email_idx').on(t.userId, t.email, t.createdAt),
  ],
)

/**
 * Failed logins typed with an address that has no account: no user to file them under, so they are kept by
 * the SHA-256 of the normalised address (global, distributed by it on Citus), never the address itself.
 * They count in that address's login backoff as they always did, so an unknown address backs off exactly
 * like a known one (no enumeration), and they go when an account with that address is deleted.
 */
export const loginAttemptsUnknown = pgTable(
  'login_attempts_unknown',
  {
    id: uuid('id').notNull().defaultRandom(),
    emailHash: text('email_hash').notNull(),
    reason: text('reason'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.emailHash, t.id] }),
    index('login_attempts_unknown_email_idx').on(t.emailHash, t.createdAt),
  ],
)

/** Short-lived codes sent by e-mail: password reset and e-mail verification. Only a hash is stored. */
export const verificationCodes = pgTable(
  'verification_codes',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: ['password_reset', 'email_verification', 'email_change'] }).notNull(),
    codeHash: text('code_hash').notNull(),
    attempts: integer('attempts').notNull().default(0),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('verification_codes_user_idx').on(t.userId, t.purpose, t.createdAt),
  ],
)

/**
 * Wrong passwords typed on routes that re-check the password of a signed-in account (change password,
 * delete account, e-mail change, MFA disable): counted per account, so a stolen access token cannot guess
 * from rotating addresses without end (routes/auth/password-check.ts). A row is written before the
 * check and removed when the password was right.
 */
export const passwordCheckFailures = pgTable(
  'password_check_failures',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('password_check_failures_user_idx').on(t.userId, t.createdAt),
  ],
)
