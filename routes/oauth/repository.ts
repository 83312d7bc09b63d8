import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { and, desc, eq, inArray, isNull, or, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter } from '../../db/keyset.ts'
import { oauthClients, oauthModels } from '../../db/schema/index.ts'

/** The grants a registered client may use (all unless restricted). */
export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
] as const
export type GrantType = (typeof GRANT_TYPES)[number]

// Client secrets are 256 random bits, so a fast hash is enough (no password stretching needed).
export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

export type OAuthClientRow = typeof oauthClients.$inferSelect

export interface NewOAuthClient {
  name: string
  redirectUris: string[]
  scopes: string[]
  grantTypes?: GrantType[]
  public: boolean
}

/** Third-party clients: what admins and the CLI register, and what the OAuth library reads (adapter). */
export function createOAuthClientRepository(db: Db) {
  return {
    /** Answers the row and, for a confidential client, its secret (shown once; the table keeps a hash). */
    async create(input: NewOAuthClient, tx?: DbOrTx): Promise<{ row: OAuthClientRow; secret: string | null }> {
      const secret = input.public ? null : randomBytes(32).toString('base64url')
      const [row] = await (tx ?? db)
        .insert(oauthClients)
        .values({
          id: `nwc_${randomBytes(16).toString('base64url')}`,
          name: input.name,
          secretHash: secret ? hashClientSecret(secret) : null,
          redirectUris: input.redirectUris,
          scopes: input.scopes,
          grantTypes: input.grantTypes ?? [...GRANT_TYPES],
        })
        .returning()
      return { row, secret }
    },

    async get(id: string, tx?: DbOrTx): Promise<OAuthClientRow | null> {
      const [row] = await (tx ?? db).select().from(oauthClients).where(eq(oauthClients.id, id))
      return row ?? null
    },

    /** A client the OAuth server may serve: registered and not revoked. */
    async live(id: string): Promise<OAuthClientRow | null> {
      const [row] = await db
        .select()
        .from(oauthClients)
        .where(and(eq(oauthClients.id, id), isNull(oauthClients.revokedAt)))
      return row ?? null
    },

    async list(limit: number, after?: KeysetAfter<Date>): Promise<OAuthClientRow[]> {
      return db
        .select()
        .from(oauthClients)
        .where(keysetAfter(oauthClients.createdAt, oauthClients.id, after, 'desc'))
        .orderBy(desc(oauthClients.createdAt), desc(oauthClients.id))
        .limit(limit)
    },

    async update(
      id: string,
      change: Partial<Pick<OAuthClientRow, 'name' | 'redirectUris' | 'scopes' | 'grantTypes'>>,
      tx?: DbOrTx,
    ): Promise<OAuthClientRow | null> {
      const [row] = await (tx ?? db)
        .update(oauthClients)
        .set({ ...change, updatedAt: new Date() })
        .where(and(eq(oauthClients.id, id), isNull(oauthClients.revokedAt)))
        .returning()
      return row ?? null
    },

    /**
     * A new secret for a confidential client; the current one keeps working for `overlapS` seconds (0:
     * it stops at once, for a leaked secret). A secret older than the current one stops at once: after
     * two rotations in a row only the last two secrets work.
     */
    async rotate(id: string, overlapS: number, tx?: DbOrTx): Promise<{ row: OAuthClientRow; secret: string } | null> {
      const secret = randomBytes(32).toString('base64url')
      const now = new Date()
      const [row] = await (tx ?? db)
        .update(oauthClients)
        .set({
          secretHash: hashClientSecret(secret),
          previousSecretHash: overlapS > 0 ? oauthClients.secretHash : null,
          previousSecretExpiresAt: overlapS > 0 ? new Date(now.getTime() + overlapS * 1000) : null,
          secretRotatedAt: now,
          updatedAt: now,
        })
        .where(
          and(eq(oauthClients.id, id), isNull(oauthClients.revokedAt), sql`${oauthClients.secretHash} is not null`),
        )
        .returning()
      return row ? { row, secret } : null
    },

    /**
     * Whether `secret` is the live client's secret, or the one before its last rotation while that one's
     * overlap lasts. Both compared in constant time, whichever matches (as the client apps' secrets).
     */
    async secretMatches(id: string, secret: string): Promise<boolean> {
      const row = await this.live(id)
      const given = Buffer.from(hashClientSecret(secret), 'utf8')
      const same = (hash: string | null | undefined) => {
        const stored = Buffer.from(hash ?? '', 'utf8')
        return stored.length === given.length && timingSafeEqual(stored, given)
      }
      const current = same(row?.secretHash)
      const previous = same(row?.previousSecretHash)
      const overlapping = (row?.previousSecretExpiresAt?.getTime() ?? 0) > Date.now()
      return row !== null && (current || (previous && overlapping))
    },

    /** The docs page's public client (Swagger UI), kept in step with PUBLIC_URL at every boot. */
    async ensureDocsClient(id: string, redirectUri: string, scopes: string[]): Promise<void> {
      const values = {
        name: 'NOWATCH API docs',
        secretHash: null,
        redirectUris: [redirectUri],
        scopes,
        grantTypes: ['authorization_code'],
      }
      await db
        .insert(oauthClients)
        .values({ id, ...values })
        .onConflictDoUpdate({ target: oauthClients.id, set: { redirectUris: values.redirectUris, scopes } })
    },

    /**
     * Revokes the client and deletes every grant, code and token issued to it. Revoking twice keeps the first
     * time. `grants`: the users' grants that ended (for `authorization.revoked`).
     */
    async revoke(id: string, tx: DbOrTx): Promise<(OAuthClientRow & { grants: EndedGrant[] }) | null> {
      const [row] = await tx
        .update(oauthClients)
        .set({ revokedAt: sql`coalesce(${oauthClients.revokedAt}, now())` })
        .where(eq(oauthClients.id, id))
        .returning()
      if (!row) return null
      const gone = await tx
        .delete(oauthModels)
        .where(eq(oauthModels.clientId, id))
        .returning({ kind: oauthModels.kind, id: oauthModels.id, accountId: oauthModels.accountId })
      return { ...row, grants: endedGrants(gone, id) }
    },
  }
}

export type OAuthClientRepository = ReturnType<typeof createOAuthClientRepository>

/** A user's grant to a client that ended: what `authorization.revoked` names. */
export interface EndedGrant {
  userId: string
  clientId: string
  grantId: string
}

/** The grants among deleted oauth_models rows. */
export function endedGrants(rows: Array<{ kind: string; id: string; accountId: string | null }>, clientId: string) {
  return rows
    .filter((r) => r.kind === 'Grant' && r.accountId)
    .map((r) => ({ userId: r.accountId as string, clientId, grantId: r.id }))
}

/** The kinds of rows that belong to a grant: what revoking it deletes. */
const GRANT_MEMBERS = ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode']

export interface AuthorizationRow {
  id: string
  clientId: string
  clientName: string
  scopes: string[]
  grantedAt: Date
  lastUsedAt: Date | null
}

/** The user's side of the grants: the apps a user authorized, and revoking one with all its tokens. */
export function createAuthorizationRepository(db: Db) {
  return {
    async list(userId: string, limit: number, after?: KeysetAfter<Date>, tx?: DbOrTx): Promise<AuthorizationRow[]> {
      const created = sql<Date>`to_timestamp((${oauthModels.payload}->>'iat')::bigint)`
      const rows = await (tx ?? db)
        .select({
          id: oauthModels.id,
          clientId: oauthModels.clientId,
          clientName: oauthClients.name,
          payload: oauthModels.payload,
          grantedAt: created,
          lastUsedAt: oauthModels.lastUsedAt,
        })
        .from(oauthModels)
        .innerJoin(oauthClients, eq(oauthClients.id, oauthModels.clientId))
        .where(
          and(
            eq(oauthModels.accountId, userId),
            eq(oauthModels.kind, 'Grant'),
            or(isNull(oauthModels.expiresAt), sql`${oauthModels.expiresAt} > now()`),
            after
              ? sql`(${created}, ${oauthModels.id}) < (${after.at.toISOString()}::timestamptz, ${after.id})`
              : undefined,
          ),
        )
        .orderBy(desc(created), desc(oauthModels.id))
        .limit(limit)
      return rows.map((r) => ({
        id: r.id,
        clientId: r.clientId ?? '',
        clientName: r.clientName,
        scopes: grantScopes(r.payload as GrantPayload),
        grantedAt: new Date(r.grantedAt),
        lastUsedAt: r.lastUsedAt,
      }))
    },

    /** The grant of `userId` for `clientId`, if any (a remembered consent). */
    async grantIdFor(userId: string, clientId: string): Promise<string | null> {
      const [row] = await db
        .select({ id: oauthModels.id })
        .from(oauthModels)
        .where(
          and(
            eq(oauthModels.kind, 'Grant'),
            eq(oauthModels.accountId, userId),
            eq(oauthModels.clientId, clientId),
            or(isNull(oauthModels.expiresAt), sql`${oauthModels.expiresAt} > now()`),
          ),
        )
        .orderBy(desc(sql`(${oauthModels.payload}->>'iat')::bigint`))
        .limit(1)
      return row?.id ?? null
    },

    /** Deletes the grant of this user and every code and token of it at once; null when it is not theirs. */
    async revoke(userId: string, grantId: string, tx?: DbOrTx): Promise<EndedGrant | null> {
      const run = async (t: DbOrTx) => {
        const [gone] = await t
          .delete(oauthModels)
          .where(and(eq(oauthModels.kind, 'Grant'), eq(oauthModels.id, grantId), eq(oauthModels.accountId, userId)))
          .returning({ id: oauthModels.id, clientId: oauthModels.clientId })
        if (!gone) return null
        await t
          .delete(oauthModels)
          .where(and(eq(oauthModels.grantId, grantId), inArray(oauthModels.kind, GRANT_MEMBERS)))
        return { userId, clientId: gone.clientId ?? '', grantId }
      }
      return tx ? run(tx) : db.transaction(run)
    },

    /**
     * Account deletion: every row oidc-provider stored for the account (grants, codes, tokens, device codes,
     * its sign-in sessions and finished interactions carry `account_id`). `oauth_models` has no foreign key to
     * `users` (Citus: docs/scaling.md), so this step removes them, after `liveGrants` was read for
     * `authorization.revoked`. Rows of no account expire and the provider's sweep removes them.
     */
    async deleteAccountRows(userId: string, tx: DbOrTx): Promise<number> {
      const rows = await tx
        .delete(oauthModels)
        .where(eq(oauthModels.accountId, userId))
        .returning({ id: oauthModels.id })
      return rows.length
    },

    /** The user's live grants (account deletion: each ends with the account). */
    async liveGrants(userId: string, tx?: DbOrTx): Promise<EndedGrant[]> {
      const rows = await (tx ?? db)
        .select({ id: oauthModels.id, clientId: oauthModels.clientId })
        .from(oauthModels)
        .where(
          and(
            eq(oauthModels.kind, 'Grant'),
            eq(oauthModels.accountId, userId),
            or(isNull(oauthModels.expiresAt), sql`${oauthModels.expiresAt} > now()`),
          ),
        )
      return rows.map((r) => ({ userId, clientId: r.clientId ?? '', grantId: r.id }))
    },
  }
}

export interface GrantPayload {
  openid?: { scope?: string }
  rejected?: { openid?: { scope?: string } }
}

/** The scopes a grant gives: granted minus rejected (as the library's Grant.getOIDCScope). */
export function grantScopes(payload: GrantPayload): string[] {
  const rejected = new Set((payload.rejected?.openid?.scope ?? '').split(' ').filter(Boolean))
  return (payload.openid?.scope ?? '').split(' ').filter((s) => s && !rejected.has(s))
}
