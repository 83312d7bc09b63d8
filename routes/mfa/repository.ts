import { and, asc, count, desc, eq, gt, inArray, isNotNull, isNull, lt, or, sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter } from '../../db/keyset.ts'
import {
  mfaLoginTokenKeys,
  mfaLoginTokens,
  mfaRecoveryCodes,
  mfaTotpFactors,
  passkeyCredentials,
  passkeys,
  webauthnChallenges,
} from '../../db/schema/index.ts'

export type PasskeyRow = typeof passkeys.$inferSelect
export type ChallengePurpose = (typeof webauthnChallenges.$inferInsert)['purpose']

/** The MFA domain's tables; every query is scoped to the account it is about. */
export function createMfaRepository(db: Db) {
  return {
    /** Whether the account has a confirmed second factor (TOTP or a passkey). */
    async hasFactor(userId: string, tx?: DbOrTx): Promise<boolean> {
      const [row] = await queryRows<{ yes: boolean }>(
        tx ?? db,
        sql`select exists (select 1 from mfa_totp_factors where user_id = ${userId} and confirmed_at is not null)
            or exists (select 1 from passkeys where user_id = ${userId}) as yes`,
      )
      return row?.yes === true
    },

    async totp(userId: string, tx?: DbOrTx) {
      const [row] = await (tx ?? db).select().from(mfaTotpFactors).where(eq(mfaTotpFactors.userId, userId)).limit(1)
      return row ?? null
    },

    /** A new pending secret, replacing a pending one; null when a confirmed factor exists. */
    async startTotp(userId: string, secretEncrypted: string, tx?: DbOrTx) {
      const [row] = await (tx ?? db)
        .insert(mfaTotpFactors)
        .values({ userId, secretEncrypted })
        .onConflictDoUpdate({
          target: mfaTotpFactors.userId,
          set: { secretEncrypted, createdAt: sql`now()`, lastUsedStep: null, lastUsedAt: null },
          setWhere: isNull(mfaTotpFactors.confirmedAt),
        })
        .returning()
      return row ?? null
    },

    /**
     * Accepts a time step once: the row is updated only when the step is newer than the last accepted
     * one, so two processes given the same code cannot both accept it. `confirm` activates the factor.
     */
    async useTotpStep(userId: string, factorId: string, step: number, confirm: boolean, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .update(mfaTotpFactors)
        .set({
          lastUsedStep: step,
          lastUsedAt: new Date(),
          ...(confirm ? { confirmedAt: new Date() } : {}),
        })
        .where(
          and(
            eq(mfaTotpFactors.userId, userId),
            eq(mfaTotpFactors.id, factorId),
            or(isNull(mfaTotpFactors.lastUsedStep), lt(mfaTotpFactors.lastUsedStep, step)),
            confirm ? isNull(mfaTotpFactors.confirmedAt) : isNotNull(mfaTotpFactors.confirmedAt),
          ),
        )
        .returning({ id: mfaTotpFactors.id })
      return rows.length > 0
    },

    async deleteTotp(userId: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(mfaTotpFactors)
        .where(and(eq(mfaTotpFactors.userId, userId), isNotNull(mfaTotpFactors.confirmedAt)))
        .returning({ id: mfaTotpFactors.id })
      return rows.length > 0
    },

    /** The new set replaces the old one entirely. */
    async replaceRecoveryCodes(userId: string, hashes: string[], tx: DbOrTx) {
      await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
      await tx.insert(mfaRecoveryCodes).values(hashes.map((codeHash) => ({ userId, codeHash })))
    },

    async unusedRecoveryCodes(userId: string) {
      return db
        .select({ id: mfaRecoveryCodes.id, codeHash: mfaRecoveryCodes.codeHash })
        .from(mfaRecoveryCodes)
        .where(and(eq(mfaRecoveryCodes.userId, userId), isNull(mfaRecoveryCodes.usedAt)))
    },

    /** Single use even under concurrency: only the first update of an unused code wins. */
    async useRecoveryCode(userId: string, id: string): Promise<boolean> {
      const rows = await db
        .update(mfaRecoveryCodes)
        .set({ usedAt: new Date() })
        .where(and(eq(mfaRecoveryCodes.id, id), eq(mfaRecoveryCodes.userId, userId), isNull(mfaRecoveryCodes.usedAt)))
        .returning({ id: mfaRecoveryCodes.id })
      return rows.length > 0
    },

    async recoveryCodeSummary(userId: string) {
      const [row] = await db
        .select({
          total: count(),
          remaining: sql<number>`count(*) filter (where ${mfaRecoveryCodes.usedAt} is null)::int`,
          created: sql<string | null>`max(${mfaRecoveryCodes.createdAt})`,
        })
        .from(mfaRecoveryCodes)
        .where(eq(mfaRecoveryCodes.userId, userId))
      return row.total > 0 ? { remaining: Number(row.remaining), created: new Date(row.created as string) } : null
    },

    async deleteRecoveryCodes(userId: string, tx?: DbOrTx) {
      await (tx ?? db).delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
    },

    // Passkeys

    /**
     * Stores the passkey and its credential id's owner in one transaction; null when the credential is
     * registered already, to this account (the passkey's key) or to another one (passkey_credentials' key,
     * which waits for a concurrent registration of the same id to commit or roll back).
     */
    async addPasskey(values: typeof passkeys.$inferInsert, tx?: DbOrTx) {
      const add = async (t: DbOrTx) => {
        const [row] = await t.insert(passkeys).values(values).onConflictDoNothing().returning()
        if (!row) return null
        const owned = await t
          .insert(passkeyCredentials)
          .values({ credentialId: row.credentialId, userId: row.userId })
          .onConflictDoNothing()
          .returning({ userId: passkeyCredentials.userId })
        if (owned.length > 0) return row
        await t.delete(passkeys).where(and(eq(passkeys.userId, row.userId), eq(passkeys.id, row.id)))
        return null
      }
      return tx ? add(tx) : db.transaction(add)
    },

    /** The credential's lookup rows go with the passkeys (no foreign key: docs/scaling.md). */
    async forgetCredentials(credentialIds: string[], tx: DbOrTx) {
      if (credentialIds.length === 0) return
      await tx.delete(passkeyCredentials).where(inArray(passkeyCredentials.credentialId, credentialIds))
    },

    /** Every passkey of the account and its credential lookup rows (account deletion, admin reset). */
    async deletePasskeysOf(userId: string, tx: DbOrTx) {
      const rows = await tx
        .delete(passkeys)
        .where(eq(passkeys.userId, userId))
        .returning({ id: passkeys.id, credentialId: passkeys.credentialId })
      await this.forgetCredentials(
        rows.map((r) => r.credentialId),
        tx,
      )
      return rows
    },

    async passkeysOf(userId: string, tx?: DbOrTx) {
      return (tx ?? db)
        .select()
        .from(passkeys)
        .where(eq(passkeys.userId, userId))
        .orderBy(asc(passkeys.createdAt), asc(passkeys.id))
    },

    async countPasskeys(userId: string): Promise<number> {
      const [row] = await db.select({ n: count() }).from(passkeys).where(eq(passkeys.userId, userId))
      return row.n
    },

    /** Newest first, keyset on (created_at, id). */
    async pagePasskeys(userId: string, limit: number, after?: KeysetAfter) {
      return db
        .select()
        .from(passkeys)
        .where(and(eq(passkeys.userId, userId), keysetAfter(passkeys.createdAt, passkeys.id, after)))
        .orderBy(desc(passkeys.createdAt), desc(passkeys.id))
        .limit(limit)
    },

    /**
     * The passkey of a credential id: its account from passkey_credentials, then the passkey by that account
     * (two single-shard reads on Citus). `userId` given (second factor, step-up): that account's only.
     */
    async passkeyByCredentialId(credentialId: string, userId: string | null) {
      let owner = userId
      if (owner === null) {
        const [found] = await db
          .select({ userId: passkeyCredentials.userId })
          .from(passkeyCredentials)
          .where(eq(passkeyCredentials.credentialId, credentialId))
          .limit(1)
        if (!found) return null
        owner = found.userId
      }
      const [row] = await db
        .select()
        .from(passkeys)
        .where(and(eq(passkeys.userId, owner), eq(passkeys.credentialId, credentialId)))
        .limit(1)
      return row ?? null
    },

    async renamePasskey(userId: string, id: string, name: string) {
      const [row] = await db
        .update(passkeys)
        .set({ name })
        .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
        .returning()
      return row ?? null
    },

    async deletePasskey(userId: string, id: string, tx: DbOrTx) {
      const [row] = await tx
        .delete(passkeys)
        .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
        .returning()
      if (row) await this.forgetCredentials([row.credentialId], tx)
      return row ?? null
    },

    /**
     * Stores the authenticator's new signature counter; a counter of 0 means the authenticator does not
     * count (synced passkeys), so it is kept as is.
     */
    async passkeyUsed(userId: string, id: string, counter: number, backedUp: boolean) {
      await db
        .update(passkeys)
        .set({ counter: sql`greatest(${passkeys.counter}, ${counter})`, backedUp, lastUsedAt: new Date() })
        .where(and(eq(passkeys.userId, userId), eq(passkeys.id, id)))
    },

    async flagClone(userId: string, id: string) {
      await db
        .update(passkeys)
        .set({ cloneWarningAt: new Date() })
        .where(and(eq(passkeys.userId, userId), eq(passkeys.id, id)))
    },

    // Challenges

    async saveChallenge(challenge: string, purpose: ChallengePurpose, userId: string | null, ttlS: number) {
      await db.insert(webauthnChallenges).values({
        challenge,
        purpose,
        userId,
        expiresAt: sql`now() + make_interval(secs => ${ttlS})` as unknown as Date,
      })
      // Expired ones are useless; drop a few now and then so the table stays small without a job.
      if (Math.random() < 0.05) await db.delete(webauthnChallenges).where(lt(webauthnChallenges.expiresAt, sql`now()`))
    },

    /** True once for a live challenge of this purpose and account; it is gone afterwards. */
    async consumeChallenge(challenge: string, purpose: ChallengePurpose, userId: string | null): Promise<boolean> {
      const rows = await db
        .delete(webauthnChallenges)
        .where(
          and(
            eq(webauthnChallenges.challenge, challenge),
            eq(webauthnChallenges.purpose, purpose),
            userId === null ? isNull(webauthnChallenges.userId) : eq(webauthnChallenges.userId, userId),
            gt(webauthnChallenges.expiresAt, sql`now()`),
          ),
        )
        .returning({ challenge: webauthnChallenges.challenge })
      return rows.length > 0
    },

    // Login tokens (the step between password and second factor)

    async createLoginToken(values: {
      userId: string
      tokenHash: string
      clientId: string | null
      admin: boolean
      ttlS: number
    }) {
      const expiresAt = sql`now() + make_interval(secs => ${values.ttlS})` as unknown as Date
      // The row on the user's shard, and the lookup by hash that finds the user when the token comes back.
      await db.transaction(async (tx) => {
        await tx.insert(mfaLoginTokens).values({
          userId: values.userId,
          tokenHash: values.tokenHash,
          clientId: values.clientId,
          admin: values.admin,
          expiresAt,
        })
        await tx.insert(mfaLoginTokenKeys).values({ tokenHash: values.tokenHash, userId: values.userId, expiresAt })
      })
      // Across users (the expired ones): a multi-shard delete on Citus (docs/scaling.md).
      if (Math.random() < 0.05) {
        await db.delete(mfaLoginTokens).where(lt(mfaLoginTokens.expiresAt, sql`now() - interval '1 hour'`))
        await db.delete(mfaLoginTokenKeys).where(lt(mfaLoginTokenKeys.expiresAt, sql`now() - interval '1 hour'`))
      }
    },

    /** The account an unexpired mfa_token belongs to (the token is opaque), or null. */
    async userOfLoginToken(tokenHash: string): Promise<string | null> {
      const [row] = await db
        .select({ userId: mfaLoginTokenKeys.userId })
        .from(mfaLoginTokenKeys)
        .where(and(eq(mfaLoginTokenKeys.tokenHash, tokenHash), gt(mfaLoginTokenKeys.expiresAt, sql`now()`)))
        .limit(1)
      return row?.userId ?? null
    },

    /**
     * Counts one try of a live, unused token of this client app; null when there is none or its tries
     * are spent. The count is taken before the code is checked, so parallel guesses cannot exceed it.
     */
    async tryLoginToken(tokenHash: string, clientId: string | null, maxAttempts: number) {
      const userId = await this.userOfLoginToken(tokenHash)
      if (!userId) return null
      const [row] = await db
        .update(mfaLoginTokens)
        .set({ attempts: sql`${mfaLoginTokens.attempts} + 1` })
        .where(
          and(
            eq(mfaLoginTokens.userId, userId),
            eq(mfaLoginTokens.tokenHash, tokenHash),
            clientId === null ? isNull(mfaLoginTokens.clientId) : eq(mfaLoginTokens.clientId, clientId),
            isNull(mfaLoginTokens.usedAt),
            gt(mfaLoginTokens.expiresAt, sql`now()`),
            lt(mfaLoginTokens.attempts, maxAttempts),
          ),
        )
        .returning()
      return row ?? null
    },

    /** Looks a live token up without spending a try (to hand out passkey options for it). */
    async liveLoginToken(tokenHash: string, clientId: string | null) {
      const userId = await this.userOfLoginToken(tokenHash)
      if (!userId) return null
      const [row] = await db
        .select()
        .from(mfaLoginTokens)
        .where(
          and(
            eq(mfaLoginTokens.userId, userId),
            eq(mfaLoginTokens.tokenHash, tokenHash),
            clientId === null ? isNull(mfaLoginTokens.clientId) : eq(mfaLoginTokens.clientId, clientId),
            isNull(mfaLoginTokens.usedAt),
            gt(mfaLoginTokens.expiresAt, sql`now()`),
          ),
        )
        .limit(1)
      return row ?? null
    },

    /** Single use: false when another request used it first. */
    async spendLoginToken(userId: string, id: string): Promise<boolean> {
      const rows = await db
        .update(mfaLoginTokens)
        .set({ usedAt: new Date() })
        .where(and(eq(mfaLoginTokens.userId, userId), eq(mfaLoginTokens.id, id), isNull(mfaLoginTokens.usedAt)))
        .returning({ id: mfaLoginTokens.id })
      return rows.length > 0
    },

    /**
     * The account export: which factors exist and when they were used; never a secret, a hash or a
     * public key (credentials, not the user's data). An account has at most a few dozen rows here.
     */
    async *exportRows(userId: string): AsyncGenerator<Record<string, unknown>> {
      const totp = await this.totp(userId)
      if (totp?.confirmedAt) {
        yield {
          kind: 'totp',
          created: totp.confirmedAt.toISOString(),
          last_used: totp.lastUsedAt?.toISOString() ?? null,
        }
      }
      const codes = await this.recoveryCodeSummary(userId)
      if (codes) yield { kind: 'recovery_codes', created: codes.created.toISOString(), remaining: codes.remaining }
      for (const p of await this.passkeysOf(userId)) {
        yield {
          kind: 'passkey',
          id: p.id,
          name: p.name,
          created: p.createdAt.toISOString(),
          last_used: p.lastUsedAt?.toISOString() ?? null,
          device_type: p.deviceType,
          backed_up: p.backedUp,
          clone_warning: p.cloneWarningAt?.toISOString() ?? null,
        }
      }
    },

    /**
     * Account deletion: the account's ceremonies and pending logins in the global tables, which have no foreign
     * key to `users` (Citus: docs/scaling.md). `mfa_login_tokens` itself is the user's data and goes with the
     * user row. Rows left some other way (a ceremony or a login never finished) expire and are swept by
     * `saveChallenge` and `createLoginToken`.
     */
    async forgetUser(userId: string, tx: DbOrTx) {
      await tx.delete(mfaLoginTokenKeys).where(eq(mfaLoginTokenKeys.userId, userId))
      await tx.delete(webauthnChallenges).where(eq(webauthnChallenges.userId, userId))
    },

    /** Every factor of the account (admin reset): TOTP, recovery codes, passkeys and pending logins. */
    async deleteAllFactors(userId: string, tx: DbOrTx) {
      const totp = await tx
        .delete(mfaTotpFactors)
        .where(eq(mfaTotpFactors.userId, userId))
        .returning({ id: mfaTotpFactors.id })
      await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
      const keys = await this.deletePasskeysOf(userId, tx)
      await tx.delete(mfaLoginTokens).where(eq(mfaLoginTokens.userId, userId))
      await tx.delete(mfaLoginTokenKeys).where(eq(mfaLoginTokenKeys.userId, userId))
      await tx.delete(webauthnChallenges).where(eq(webauthnChallenges.userId, userId))
      return { totp: totp.length, passkeys: keys.length }
    },
  }
}

export type MfaRepository = ReturnType<typeof createMfaRepository>
