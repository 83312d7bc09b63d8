import { eq, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { users } from '../../db/schema/index.ts'

export type UserRow = typeof users.$inferSelect
export type NewUser = typeof users.$inferInsert

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

    async findById(id: string, tx?: DbOrTx): Promise<UserRow | null> {
      const [row] = await (tx ?? db).select().from(users).where(eq(users.id, id)).limit(1)
      return row ?? null
    },

    /** Locks the user row: serialises logins of one account (session limit) within the transaction. */
    async lock(id: string, tx: DbOrTx) {
      await tx.select({ id: users.id }).from(users).where(eq(users.id, id)).for('update')
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

    async setRole(id: string, role: 'user' | 'admin', tx?: DbOrTx) {
      await (tx ?? db).update(users).set({ role, updatedAt: new Date() }).where(eq(users.id, id))
    },
  }
}

export type UserRepository = ReturnType<typeof createUserRepository>
