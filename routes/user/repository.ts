import { and, asc, desc, eq, ilike, isNull, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Db, DbOrTx } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { userSettings, users } from '../../db/schema/index.ts'
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

export function createUserRepository(db: Db) {
  return {
    async findByEmail(email: string, tx?: DbOrTx): Promise<UserRow | null> {
      const [row] = await (tx ?? db)
        .select()
        .from(users)
        .where(eq(users.email, normaliseEmail(email)))
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
      const [row] = await (tx ?? db)
        .insert(users)
        .values({ ...values, email: normaliseEmail(values.email) })
        .onConflictDoUpdate({ target: users.email, set: { updatedAt: sql`${users.updatedAt}` } })
        // xmax is 0 on a row this statement inserted, and set on one it updated.
        .returning({ id: users.id, firstName: users.firstName, inserted: sql<boolean>`(xmax = 0)` })
      return row.inserted ? { id: row.id, firstName: row.firstName } : null
    },

    /** Inserts a user; null when the email already has an account. */
    async create(values: NewUser, tx?: DbOrTx): Promise<UserRow | null> {
      const rows = await (tx ?? db)
        .insert(users)
        .values({ ...values, email: normaliseEmail(values.email) })
        .onConflictDoNothing({ target: users.email })
        .returning()
      return rows[0] ?? null
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
      const rows = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id })
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

    /** Makes the pending address the login address, verified (the code proved the mailbox). */
    async applyPendingEmail(id: string, email: string, tx: DbOrTx): Promise<UserRow | null> {
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
