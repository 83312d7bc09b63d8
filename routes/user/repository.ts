import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, ilike, isNull, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Db, DbOrTx } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { userEmails, userSettings, users } from '../../db/schema/index.ts'
import { errors } from '../../plugins/errors.ts'
import { SETTINGS, type SettingKey, type SettingValue, decodeSetting, encodeSetting } from './settings.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The users table, for the plugins that need a user (the profile cache) and the domains. */
    userRepository: UserRepository
  }
}

export type UserRow = typeof users.$inferSelect
export type NewUser = typeof users.$inferInsert

/** What PATCH /v1/users/me may change; undefined leaves a column alone, null clears it. */
export interface ProfileChanges {
  firstName?: string
  lastName?: string
  dateOfBirth?: string | null
  sex?: 'male' | 'female' | null
  weight?: number | null
  height?: number | null
  sleepTimeGoal?: number
  tipAudiences?: string[]
  timeZone?: string
}

/** `%`, `_` and `\` are literal in a search string. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

/** Emails are compared trimmed and lower-cased (unique ignoring case, stored normalised). */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase()
}

/** The constraint a confirmed e-mail change breaks when the address was registered meanwhile. */
export const EMAIL_TAKEN_CONSTRAINT = 'user_emails_pkey'

/** No account has this id (random UUIDs are version 4): the second read of a lookup that found nothing. */
const NO_USER = '00000000-0000-0000-0000-000000000000'

/** Runs `work` in the given transaction, or in a new one. */
function inTx<T>(db: Db, tx: DbOrTx | undefined, work: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return tx ? work(tx) : db.transaction(work)
}

/**
 * Addresses are unique through user_emails (Citus: distributed by email, users by id): a lookup by address
 * reads user_emails, then the user by id.
 */
export function createUserRepository(db: Db) {
  return {
    /** The account of an address: its id from user_emails, then the row (both reads whether found or not). */
    async findByEmail(email: string, tx?: DbOrTx): Promise<UserRow | null> {
      const q = tx ?? db
      const [owner] = await q
        .select({ userId: userEmails.userId })
        .from(userEmails)
        .where(eq(userEmails.email, normaliseEmail(email)))
        .limit(1)
      // An unknown address costs the same two reads as a known one (no timing difference to enumerate by).
      const [row] = await q
        .select()
        .from(users)
        .where(eq(users.id, owner?.userId ?? NO_USER))
        .limit(1)
      return row ?? null
    },

    /**
     * The user's IANA time zone: calendar days (journal, statistics, insights) are counted in it. The one
     * way to ask; a user who is gone answers `404 not_found`, as their data would.
     */
    async timeZone(id: string, tx?: DbOrTx): Promise<string> {
      const [row] = await (tx ?? db).select({ timeZone: users.timeZone }).from(users).where(eq(users.id, id)).limit(1)
      if (!row) throw errors.notFound()
      return row.timeZone
    },

    async findById(id: string, tx?: DbOrTx): Promise<UserRow | null> {
      const [row] = await (tx ?? db).select().from(users).where(eq(users.id, id)).limit(1)
      return row ?? null
    },

    /**
     * Locks the user row: serialises logins of one account (session limit) within the transaction.
     * False when the row is gone (deleted while the caller waited for the lock).
     */
    async lock(id: string, tx: DbOrTx): Promise<boolean> {
      const rows = await tx.select({ id: users.id }).from(users).where(eq(users.id, id)).for('update')
      return rows.length > 0
    },

    /**
     * Registration's insert, doing the same work whether or not the address has an account: a new row,
     * or a no-op update of the existing one (both write and commit, so neither answers faster). The
     * new user, or null when the address was taken; the existing row is left as it was.
     */
    async createOrTouch(values: NewUser, tx?: DbOrTx): Promise<{ id: string; firstName: string } | null> {
      const email = normaliseEmail(values.email)
      return inTx(db, tx, async (tx) => {
        // The address first: a new lookup row, or a no-op update of the existing one (both write).
        const [owner] = await tx
          .insert(userEmails)
          .values({ email, userId: values.id ?? randomUUID() })
          .onConflictDoUpdate({ target: userEmails.email, set: { createdAt: sql`${userEmails.createdAt}` } })
          // xmax is 0 on a row this statement inserted, and set on one it updated.
          .returning({ userId: userEmails.userId, inserted: sql<boolean>`(xmax = 0)` })
        if (!owner.inserted) {
          // Then the user row: inserted, or touched as it is (both write and commit, so neither answers faster).
          await tx
            .update(users)
            .set({ updatedAt: sql`${users.updatedAt}` })
            .where(eq(users.id, owner.userId))
          return null
        }
        const [row] = await tx
          .insert(users)
          .values({ ...values, id: owner.userId, email })
          .returning({ id: users.id, firstName: users.firstName })
        return row
      })
    },

    /** Inserts a user and its address; null when the address already has an account. */
    async create(values: NewUser, tx?: DbOrTx): Promise<UserRow | null> {
      const email = normaliseEmail(values.email)
      return inTx(db, tx, async (tx) => {
        const [owner] = await tx
          .insert(userEmails)
          .values({ email, userId: values.id ?? randomUUID() })
          .onConflictDoNothing({ target: userEmails.email })
          .returning({ userId: userEmails.userId })
        if (!owner) return null
        const rows = await tx
          .insert(users)
          .values({ ...values, id: owner.userId, email })
          .returning()
        return rows[0] ?? null
      })
    },

    async setPasswordHash(id: string, passwordHash: string, tx?: DbOrTx) {
      await (tx ?? db).update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, id))
    },

    async markEmailVerified(id: string, tx?: DbOrTx) {
      await (tx ?? db)
        .update(users)
        .set({ emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, now())` })
        .where(eq(users.id, id))
    },

    /** Applies the given changes and bumps `updated`; the row after the change, null if the user is gone. */
    async updateProfile(id: string, changes: ProfileChanges, tx?: DbOrTx): Promise<UserRow | null> {
      const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined))
      if (Object.keys(set).length === 0) return this.findById(id, tx)
      const [row] = await (tx ?? db)
        .update(users)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(users.id, id))
        .returning()
      return row ?? null
    },

    /** Whether PostgreSQL itself knows the time zone name (aggregates run `at time zone` on it). */
    async isKnownTimeZone(name: string): Promise<boolean> {
      try {
        await db.execute(sql`select now() at time zone ${name}`)
        return true
      } catch (err) {
        if ((err as { code?: string }).code === '22023') return false
        throw err
      }
    },

    async settings(userId: string, tx?: DbOrTx) {
      return (tx ?? db)
        .select({ key: userSettings.key, value: userSettings.value, updatedAt: userSettings.updatedAt })
        .from(userSettings)
        .where(eq(userSettings.userId, userId))
        .orderBy(asc(userSettings.key))
    },

    /** One setting's effective value (stored, else its default), for the features that honour it. */
    async setting<K extends SettingKey>(userId: string, key: K, tx?: DbOrTx): Promise<(typeof SETTINGS)[K]['default']> {
      const [row] = await (tx ?? db)
        .select({ value: userSettings.value })
        .from(userSettings)
        .where(and(eq(userSettings.userId, userId), eq(userSettings.key, key)))
        .limit(1)
      const fallback = SETTINGS[key].default
      return (row ? decodeSetting(row.value, fallback) : fallback) as (typeof SETTINGS)[K]['default']
    },

    /** Upserts the given keys; null deletes the row so the key reads as its default again. */
    async putSettings(userId: string, values: Partial<Record<SettingKey, SettingValue | null>>, tx: DbOrTx) {
      const now = new Date()
      for (const [key, value] of Object.entries(values)) {
        if (value === undefined) continue
        if (value === null) {
          await tx.delete(userSettings).where(and(eq(userSettings.userId, userId), eq(userSettings.key, key)))
          continue
        }
        await tx
          .insert(userSettings)
          .values({ userId, key, value: encodeSetting(value), updatedAt: now })
          .onConflictDoUpdate({
            target: [userSettings.userId, userSettings.key],
            set: { value: encodeSetting(value), updatedAt: now },
          })
      }
    },

    /** Admin search: e-mail containing `emailContains` (any case), newest first, keyset on (created_at, id). */
    async search(
      query: { emailContains?: string; disabled?: boolean },
      limit: number,
      after?: { at: Date; id: string },
    ): Promise<UserRow[]> {
      return db
        .select()
        .from(users)
        .where(
          and(
            query.emailContains ? ilike(users.email, likePattern(query.emailContains.trim().toLowerCase())) : undefined,
            query.disabled === undefined
              ? undefined
              : query.disabled
                ? sql`${users.disabledAt} is not null`
                : isNull(users.disabledAt),
            keysetAfter(users.createdAt, users.id, after),
          ),
        )
        .orderBy(desc(users.createdAt), desc(users.id))
        .limit(limit)
    },

    /** Sets or clears `disabled_at` (keeping the first time on a repeated disable); null if no such user. */
    async setDisabled(id: string, disabled: boolean, tx?: DbOrTx): Promise<UserRow | null> {
      const [row] = await (tx ?? db)
        .update(users)
        .set({
          disabledAt: disabled ? sql`coalesce(${users.disabledAt}, now())` : null,
          updatedAt: new Date(),
        })
        .where(eq(users.id, id))
        .returning()
      return row ?? null
    },

    /** Locks and returns the row (account deletion); null if it is already gone. */
    async findForUpdate(id: string, tx: DbOrTx): Promise<UserRow | null> {
      const [row] = await tx.select().from(users).where(eq(users.id, id)).for('update').limit(1)
      return row ?? null
    },

    /** Deletes the user; every table owning rows by user_id cascades from here. */
    async delete(id: string, tx: DbOrTx): Promise<boolean> {
      const rows = await tx.delete(users).where(eq(users.id, id)).returning({ email: users.email })
      // The address is free again (user_emails has no foreign key: docs/scaling.md).
      for (const r of rows) {
        await tx.delete(userEmails).where(and(eq(userEmails.email, r.email), eq(userEmails.userId, id)))
      }
      return rows.length > 0
    },

    /** The settings rows of a user, for the account export. */
    async *exportSettingRows(userId: string) {
      for (const r of await this.settings(userId)) {
        yield { key: r.key, value: JSON.parse(r.value) as unknown, updated: r.updatedAt.toISOString() }
      }
    },

    /** Records a pending e-mail change (replacing any earlier one); the row after, null if the user is gone. */
    async setPendingEmail(id: string, email: string, expiresAt: Date, tx?: DbOrTx): Promise<UserRow | null> {
      const [row] = await (tx ?? db)
        .update(users)
        .set({ pendingEmail: normaliseEmail(email), pendingEmailExpiresAt: expiresAt, updatedAt: new Date() })
        .where(eq(users.id, id))
        .returning()
      return row ?? null
    },

    /**
     * Makes the pending address the login address, verified (the code proved the mailbox), and moves its
     * user_emails row in the same transaction: the new address is inserted first, so an address registered
     * meanwhile raises a unique violation of EMAIL_TAKEN_CONSTRAINT (the transaction rolls back whole).
     */
    async applyPendingEmail(id: string, email: string, tx: DbOrTx): Promise<UserRow | null> {
      const [current] = await tx.select({ email: users.email }).from(users).where(eq(users.id, id)).limit(1)
      if (!current) return null
      if (current.email !== email) {
        await tx.insert(userEmails).values({ email, userId: id })
        await tx.delete(userEmails).where(and(eq(userEmails.email, current.email), eq(userEmails.userId, id)))
      }
      const [row] = await tx
        .update(users)
        .set({
          email,
          emailVerifiedAt: new Date(),
          pendingEmail: null,
          pendingEmailExpiresAt: null,
          updatedAt: new Date(),
        })
        .where(eq(users.id, id))
        .returning()
      return row ?? null
    },

    async setRole(id: string, role: 'user' | 'admin', tx?: DbOrTx) {
      await (tx ?? db).update(users).set({ role, updatedAt: new Date() }).where(eq(users.id, id))
    },
  }
}

export type UserRepository = ReturnType<typeof createUserRepository>

/** The repository as a named decorator, so plugins that need users can depend on it. */
export default fp(
  async function userRepositoryPlugin(app) {
    app.decorate('userRepository', createUserRepository(app.db))
  },
  { name: 'user-repository', dependencies: ['db'] },
)
