import { and, count, eq, gt, max, ne, sql } from 'drizzle-orm'
import type { Db } from '../../db/client.ts'
import { passwordCheckFailures } from '../../db/schema/index.ts'
import { errors } from '../../plugins/errors.ts'
import { verifyPassword } from './passwords.ts'

/** The routes that re-check the password of a signed-in account. */
export type PasswordCheckPurpose = 'change_password' | 'delete_account' | 'change_email' | 'mfa_disable'

// The same curve as login's (routes/auth/service.ts): from the 5th failure within an hour each further
// try waits twice as long (1 s, 2 s, 4 s … capped at 15 min); past 100 in the hour none is checked.
export const PASSWORD_CHECK_WINDOW_S = 3600
export const PASSWORD_CHECK_BACKOFF_FROM = 5
export const PASSWORD_CHECK_HARD_LIMIT = 100

/** Seconds still to wait after `failures` failures, the last at `last`; 0 when a try is allowed. */
export function backoffLeftS(failures: number, last: Date | null, now = Date.now()): number {
  if (failures >= PASSWORD_CHECK_HARD_LIMIT) return PASSWORD_CHECK_WINDOW_S
  if (failures < PASSWORD_CHECK_BACKOFF_FROM || !last) return 0
  const waitMs = Math.min(900, 2 ** (failures - PASSWORD_CHECK_BACKOFF_FROM)) * 1000
  return Math.max(0, (last.getTime() + waitMs - now) / 1000)
}

/**
 * `checkAccountPassword(user, password, purpose)`: the one way a route re-checks the password of a
 * signed-in account (change password, delete account, e-mail change, MFA disable), so that a stolen
 * access token cannot guess the password from rotating addresses without end (ASVS 2.2.1). Failures are
 * counted per account, across all those routes, with login's backoff; in backoff it throws
 * `429 rate_limited` with Retry-After and does not check the password at all.
 *
 * The try is written before the check and removed when the password was right, so requests sent in
 * parallel see each other and cannot all slip through before the first failure is recorded. A right
 * password forgives the account's earlier failures: whoever typed it knows it.
 */
export function createPasswordCheck(db: Db) {
  return async function checkAccountPassword(
    user: { id: string; passwordHash: string },
    password: string,
    purpose: PasswordCheckPurpose,
  ): Promise<boolean> {
    const [mine] = await db
      .insert(passwordCheckFailures)
      .values({ userId: user.id, purpose })
      .returning({ id: passwordCheckFailures.id })
    const [earlier] = await db
      .select({ failures: count(), last: max(passwordCheckFailures.createdAt) })
      .from(passwordCheckFailures)
      .where(
        and(
          eq(passwordCheckFailures.userId, user.id),
          ne(passwordCheckFailures.id, mine.id),
          gt(passwordCheckFailures.createdAt, sql`now() - make_interval(secs => ${PASSWORD_CHECK_WINDOW_S})`),
        ),
      )
    const left = backoffLeftS(earlier.failures, earlier.last ? new Date(earlier.last) : null)
    if (left > 0) {
      // Refused unchecked: not a guess, so it does not count.
      await db
        .delete(passwordCheckFailures)
        .where(and(eq(passwordCheckFailures.userId, user.id), eq(passwordCheckFailures.id, mine.id)))
      throw errors.tooMany('rate_limited', 'Too many wrong passwords for this account; wait before trying again.', left)
    }
    const ok = await verifyPassword(password, user.passwordHash)
    if (ok) await db.delete(passwordCheckFailures).where(eq(passwordCheckFailures.userId, user.id))
    return ok
  }
}

export type CheckAccountPassword = ReturnType<typeof createPasswordCheck>
