import { and, asc, count, desc, eq, gt, max, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter, keysetRows } from '../../db/keyset.ts'
import { loginAttempts } from '../../db/schema/index.ts'
import { locate } from './geoip.ts'

export interface AttemptValues {
  userId: string | null
  email: string
  /** `login` (the default) or `refresh`. */
  type?: 'login' | 'refresh'
  success: boolean
  reason: string | null
  ip: string
  userAgent: string | null
}

export function createHistoryRepository(db: Db, onGeoError: (err: unknown) => void = () => {}) {
  return {
    /** Writes an entry with the place of its address (null for private and loopback ones). */
    async record(values: AttemptValues, tx?: DbOrTx) {
      const place = await locate(values.ip, onGeoError)
      await (tx ?? db).insert(loginAttempts).values({ ...values, ...place })
    },

    /** A token refresh in the history: the account's own e-mail, where it came from, and the place. */
    async recordRefresh(userId: string, meta: { ip: string; userAgent: string | null }) {
      const place = await locate(meta.ip, onGeoError)
      await db.execute(sql`
        insert into login_attempts (user_id, email, type, success, ip, user_agent, country_code, region, city, latitude, longitude)
        select id, email, 'refresh', true, ${meta.ip}, ${meta.userAgent}, ${place?.countryCode ?? null},
               ${place?.region ?? null}, ${place?.city ?? null}, ${place?.latitude ?? null}, ${place?.longitude ?? null}
          from users where id = ${userId}`)
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
