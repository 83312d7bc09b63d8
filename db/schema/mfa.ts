import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { clientApps } from './auth.ts'
import { users } from './user.ts'

/**
 * One TOTP authenticator per account (RFC 6238). The shared secret is kept encrypted (AES-256-GCM,
 * see routes/mfa/crypto.ts); `last_used_step` is the time step of the last accepted code, so a code is
 * accepted once across every server process (replay, RFC 6238 §5.2).
 */
export const mfaTotpFactors = pgTable(
  'mfa_totp_factors',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    secretEncrypted: text('secret_encrypted').notNull(),
    /** Null while enrolment waits for its first valid code; the factor counts only once confirmed. */
    confirmedAt: timestamp('confirmed_at', { withTimezone: true, precision: 3 }),
    lastUsedStep: bigint('last_used_step', { mode: 'number' }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    uniqueIndex('mfa_totp_factors_user_key').on(t.userId),
  ],
)

/** Ten single-use recovery codes per account, kept as keyed hashes only. */
export const mfaRecoveryCodes = pgTable(
  'mfa_recovery_codes',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    index('mfa_recovery_codes_user_idx').on(t.userId),
  ],
)

/**
 * WebAuthn credentials (passkeys), as @simplewebauthn/server asks them to be stored. Keyed by user (Citus:
 * distributed by user_id); a credential id is unique across accounts through `passkey_credentials`.
 */
export const passkeys = pgTable(
  'passkeys',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** base64url credential id, unique across the relying party. */
    credentialId: text('credential_id').notNull(),
    /** base64url COSE public key. */
    publicKey: text('public_key').notNull(),
    counter: bigint('counter', { mode: 'number' }).notNull().default(0),
    transports: text('transports').array().notNull().default(sql`'{}'::text[]`),
    deviceType: text('device_type', { enum: ['singleDevice', 'multiDevice'] }).notNull(),
    backedUp: boolean('backed_up').notNull(),
    aaguid: text('aaguid'),
    name: text('name').notNull(),
    /** Set when the signature counter went backwards: a possibly cloned authenticator (WebAuthn §6.1.1). */
    cloneWarningAt: timestamp('clone_warning_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ name: 'passkeys_pkey', columns: [t.userId, t.id] }),
    uniqueIndex('passkeys_credential_key').on(t.userId, t.credentialId),
    index('passkeys_user_idx').on(t.userId, t.createdAt, t.id),
  ],
)

/**
 * Which account a credential id belongs to: a passwordless login presents the credential before the account
 * is known, and one credential may belong to one account only (the primary key enforces it). Written in the
 * transaction that stores the passkey, deleted in the one that removes it (repository and account deletion);
 * no foreign key, as on Citus, where it is distributed by credential_id and cannot refer to user-distributed
 * tables (docs/scaling.md).
 */
export const passkeyCredentials = pgTable('passkey_credentials', {
  credentialId: text('credential_id').primaryKey(),
  userId: uuid('user_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
})

/**
 * WebAuthn challenges, server-side so that any process can finish a ceremony another one began;
 * single use (deleted when checked) and short-lived.
 */
export const webauthnChallenges = pgTable(
  'webauthn_challenges',
  {
    challenge: text('challenge').primaryKey(),
    purpose: text('purpose', { enum: ['register', 'login', 'second_factor', 'reauthenticate'] }).notNull(),
    /**
     * Whose ceremony it is; null for a passwordless login, where the credential names the account. No foreign
     * key to `users` (on Citus this table is distributed by challenge: docs/scaling.md): account deletion and the
     * admin's MFA reset delete the account's challenges; one left by a ceremony never finished expires and is
     * swept by `saveChallenge`.
     */
    userId: uuid('user_id'),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('webauthn_challenges_expires_idx').on(t.expiresAt)],
)

/**
 * A login that passed the password and waits for its second factor. Only the token's SHA-256 is kept;
 * it works once, for a few minutes, from the client app that started the login, for a few tries.
 * Keyed by the user (Citus, docs/scaling.md); the opaque token is first resolved to its user through
 * `mfa_login_token_keys`.
 */
export const mfaLoginTokens = pgTable(
  'mfa_login_tokens',
  {
    id: uuid('id').notNull().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    clientId: uuid('client_id').references(() => clientApps.id, { onDelete: 'cascade' }),
    /** Started by the admin login: the session it opens is an admin one. */
    admin: boolean('admin').notNull().default(false),
    attempts: integer('attempts').notNull().default(0),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.id] }),
    uniqueIndex('mfa_login_tokens_hash_key').on(t.userId, t.tokenHash),
    check('mfa_login_tokens_attempts_nonnegative', sql`${t.attempts} >= 0`),
  ],
)

/**
 * Which account an `mfa_token` belongs to, by the token's SHA-256: the token is opaque and is presented
 * before the user is known, so this global lookup (distributed by `token_hash` on Citus, as `user_emails`
 * is by e-mail) finds the user whose shard holds the token's row. Written with the row, swept with it.
 * No foreign key to `users` (Citus cannot have one from here): account deletion and the admin's MFA reset
 * delete the account's rows; a login never finished expires and the sweep in `createLoginToken` removes it.
 */
export const mfaLoginTokenKeys = pgTable(
  'mfa_login_token_keys',
  {
    tokenHash: text('token_hash').primaryKey(),
    userId: uuid('user_id').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
  },
  (t) => [
    index('mfa_login_token_keys_user_idx').on(t.userId),
    index('mfa_login_token_keys_expires_idx').on(t.expiresAt),
  ],
)
