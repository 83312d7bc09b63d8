import { and, asc, count, desc, eq, gt, max, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter, keysetRows } from '../../db/keyset.ts'
import { loginAttempts } from '../../db/schema/index.ts'

export interface AttemptValues {
  userId: string | null
  email: string
  success: boolean
  reason: string | null
  ip: string
  userAgent: string | null
}

export function createHistoryRepository(db: Db) {
  return {
    async record(values: AttemptValues, tx?: DbOrTx) {
      await (tx ?? db).insert(loginAttempts).values(values)
    },

    /** Failed attempts on this email within the window, and when the last one was. */
    async recentFailures(email: string, windowS: number): Promise<{ failures: number; last: Date | null }> {
      const [row] = await db
        .select({ failures: count(), last: max(loginAttempts.createdAt) })
        .from(loginAttempts)
        .where(
          and(
            eq(loginAttempts.email, email),
            eq(loginAttempts.success, false),
            gt(loginAttempts.createdAt, sql`now() - make_interval(secs => ${windowS})`),
          ),
        )
      return { failures: row.failures, last: row.last ? new Date(row.last) : null }
    },

    /** The user's attempts, newest first (or `asc`, the export), keyset-paginated on (created_at, id). */
    async page(userId: string, limit: number, after?: { at: Date; id: string }, order: 'asc' | 'desc' = 'desc') {
      const by = order === 'desc' ? desc : asc
      return db
        .select()
        .from(loginAttempts)
        .where(
          and(eq(loginAttempts.userId, userId), keysetAfter(loginAttempts.createdAt, loginAttempts.id, after, order)),
        )
        .orderBy(by(loginAttempts.createdAt), by(loginAttempts.id))
        .limit(limit)
    },

    /**
     * Failed attempts typed with this e-mail are kept by address, not by account (user_id may be null);
     * account deletion removes them with the account.
     */
    async deleteByEmail(email: string, tx: DbOrTx) {
      await tx.delete(loginAttempts).where(eq(loginAttempts.email, email))
    },

    /** Every attempt on the account, oldest first in batches (account export). */
    exportRows(userId: string, batch = 1000) {
      return keysetRows(
        (after: KeysetAfter | undefined, n: number) => this.page(userId, n, after, 'asc'),
        (r) => ({ at: r.createdAt, id: r.id }),
        (r) => ({
          id: r.id,
          date_time: r.createdAt.toISOString(),
          email: r.email,
          success: r.success,
          reason: r.reason,
          ip: r.ip,
          user_agent: r.userAgent,
        }),
        batch,
      )
    },
  }
}
