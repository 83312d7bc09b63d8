import { createHash } from 'node:crypto'
import { and, asc, count, desc, eq, gt, max, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter, keysetRows } from '../../db/keyset.ts'
import { loginAttempts, loginAttemptsUnknown } from '../../db/schema/index.ts'
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

/**
 * The key of an address without an account (`login_attempts_unknown`): SHA-256, hex, of the normalised
 * address — the migration that moved the old rows computes the same in SQL.
 */
export function emailKey(email: string): string {
  return createHash('sha256').update(email, 'utf8').digest('hex')
}

export function createHistoryRepository(db: Db, onGeoError: (err: unknown) => void = () => {}) {
  return {
    /**
     * Writes an entry with the place of its address (null for private and loopback ones). An attempt on an
     * address without an account has no user to file it under: it is kept by the address's hash only, for
     * that address's backoff.
     */
    async record(values: AttemptValues, tx?: DbOrTx) {
      const { userId, ...rest } = values
      // Located either way, so an unknown address's failure takes as long as a known one's (enumeration).
      const place = await locate(values.ip, onGeoError)
      if (userId === null) {
        await (tx ?? db).insert(loginAttemptsUnknown).values({
          emailHash: emailKey(values.email),
          reason: values.reason,
          ip: values.ip,
          userAgent: values.userAgent,
        })
        return
      }
      await (tx ?? db).insert(loginAttempts).values({ userId, ...rest, ...place })
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

    /**
     * Failed attempts on this email within the window, and when the last one was: those on the account that
     * has the address now (`userId`, typed with this address) and those made while no account had it. Both
     * are looked up whether or not there is an account, so known and unknown addresses cost the same.
     */
    async recentFailures(
      email: string,
      userId: string | null,
      windowS: number,
    ): Promise<{ failures: number; last: Date | null }> {
      const since = sql`now() - make_interval(secs => ${windowS})`
      const [known] = userId
        ? await db
            .select({ failures: count(), last: max(loginAttempts.createdAt) })
            .from(loginAttempts)
            .where(
              and(
                eq(loginAttempts.userId, userId),
                eq(loginAttempts.email, email),
                eq(loginAttempts.success, false),
                gt(loginAttempts.createdAt, since),
              ),
            )
        : [{ failures: 0, last: null }]
      const [unknown] = await db
        .select({ failures: count(), last: max(loginAttemptsUnknown.createdAt) })
        .from(loginAttemptsUnknown)
        .where(and(eq(loginAttemptsUnknown.emailHash, emailKey(email)), gt(loginAttemptsUnknown.createdAt, since)))
      const lasts = [known.last, unknown.last].filter((d) => d !== null).map((d) => new Date(d as Date | string))
      return {
        failures: known.failures + unknown.failures,
        last: lasts.length ? new Date(Math.max(...lasts.map((d) => d.getTime()))) : null,
      }
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
     * Failed attempts typed with this e-mail while it had no account are kept by the address's hash;
     * account deletion removes them with the account (whose own attempts go with it, by user_id).
     */
    async deleteByEmail(email: string, tx: DbOrTx) {
      await tx.delete(loginAttemptsUnknown).where(eq(loginAttemptsUnknown.emailHash, emailKey(email)))
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
