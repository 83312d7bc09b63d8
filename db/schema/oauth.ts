import { sql } from 'drizzle-orm'
import { index, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/**
 * Third-party apps (integrators) registered for OAuth 2.0 by an admin or the CLI. `secret_hash` is the
 * SHA-256 of the client secret (a 256-bit random value, shown once); null for a public client (mobile,
 * SPA), which must use PKCE. Redirect URIs match exactly; `scopes` are what the client may ask for.
 */
export const oauthClients = pgTable('oauth_clients', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  secretHash: text('secret_hash'),
  redirectUris: text('redirect_uris').array().notNull(),
  scopes: text('scopes').array().notNull(),
  grantTypes: text('grant_types').array().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  secretRotatedAt: timestamp('secret_rotated_at', { withTimezone: true, precision: 3 }),
  revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
  /** The secret before the last rotation (its SHA-256), accepted until `previous_secret_expires_at`. */
  previousSecretHash: text('previous_secret_hash'),
  previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true, precision: 3 }),
})

/**
 * What the OAuth library (oidc-provider) stores: grants, codes, tokens, device codes, interactions and
 * its sign-in sessions, one row per model instance, shared by every server process. The payload is the
 * library's own; the columns beside it are what it is looked up by (its adapter interface): the grant a
 * token belongs to (revoking a grant deletes all its rows), the device flow's user code, a session's uid.
 * `account_id` ties every row to its user, so deleting the account deletes them all (a deletion step).
 */
export const oauthModels = pgTable(
  'oauth_models',
  {
    kind: text('kind').notNull(),
    id: text('id').notNull(),
    payload: jsonb('payload').notNull(),
    grantId: text('grant_id'),
    userCode: text('user_code'),
    uid: text('uid'),
    /**
     * No foreign key to `users`: on Citus this table is distributed by id and cannot refer to a table distributed
     * by user (docs/scaling.md). Account deletion deletes the account's rows (after `authorization.revoked` has
     * read its grants); rows of no account (an interaction before sign-in, client credentials) expire and the
     * sweep every ten minutes (routes/oauth/index.ts) removes them.
     */
    accountId: uuid('account_id'),
    clientId: text('client_id'),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }),
    consumedAt: timestamp('consumed_at', { withTimezone: true, precision: 3 }),
    /** Grants only: when a token of the grant was last used on the API (written at most once a minute). */
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [
    primaryKey({ columns: [t.kind, t.id] }),
    index('oauth_models_grant_idx').on(t.grantId),
    index('oauth_models_user_code_idx').on(t.userCode).where(sql`${t.userCode} is not null`),
    index('oauth_models_uid_idx').on(t.uid).where(sql`${t.uid} is not null`),
    index('oauth_models_account_idx').on(t.accountId, t.kind),
    index('oauth_models_expires_idx').on(t.expiresAt),
  ],
)
