import { createHmac, randomInt, timingSafeEqual } from 'node:crypto'
import { and, desc, eq, gt, isNull, sql } from 'drizzle-orm'
import type { DbOrTx } from '../../db/client.ts'
import { verificationCodes } from '../../db/schema/index.ts'

export type CodePurpose = 'password_reset' | 'email_verification' | 'email_change'

/** Codes tried this many times wrongly are burnt. */
export const MAX_CODE_ATTEMPTS = 5

/**
 * One-time e-mailed codes (6 digits). Stored as an HMAC keyed by the server secret and bound to
 * the user and purpose: a leaked table does not give the codes away.
 */
export function createCodeRepository(secret: string) {
  const hash = (userId: string, purpose: CodePurpose, code: string) =>
    createHmac('sha256', secret).update(`${purpose}:${userId}:${code}`).digest('hex')

  return {
    /** A new code; earlier unused codes of the same purpose stop working. Returns the clear code to e-mail. */
    async issue(userId: string, purpose: CodePurpose, ttlS: number, tx: DbOrTx): Promise<string> {
      const code = randomInt(0, 1_000_000).toString().padStart(6, '0')
      await tx
        .update(verificationCodes)
        .set({ usedAt: new Date() })
        .where(
          and(
            eq(verificationCodes.userId, userId),
            eq(verificationCodes.purpose, purpose),
            isNull(verificationCodes.usedAt),
          ),
        )
      await tx.insert(verificationCodes).values({
        userId,
        purpose,
        codeHash: hash(userId, purpose, code),
        expiresAt: new Date(Date.now() + ttlS * 1000),
      })
      return code
    },

    /**
     * Checks a code in constant time and consumes it when right. A wrong code counts an attempt;
     * the fifth wrong one burns the code. Runs in the caller's transaction with the row locked.
     */
    async consume(userId: string, purpose: CodePurpose, code: string, tx: DbOrTx): Promise<boolean> {
      const [row] = await tx
        .select()
        .from(verificationCodes)
        .where(
          and(
            eq(verificationCodes.userId, userId),
            eq(verificationCodes.purpose, purpose),
            isNull(verificationCodes.usedAt),
            gt(verificationCodes.expiresAt, sql`now()`),
          ),
        )
        .orderBy(desc(verificationCodes.createdAt))
        .limit(1)
        .for('update')
      if (!row) return false
      const presented = Buffer.from(hash(userId, purpose, /^\d{6}$/.test(code) ? code : 'x'), 'hex')
      const ok = timingSafeEqual(presented, Buffer.from(row.codeHash, 'hex'))
      if (ok) {
        await tx
          .update(verificationCodes)
          .set({ usedAt: new Date() })
          .where(and(eq(verificationCodes.userId, userId), eq(verificationCodes.id, row.id)))
        return true
      }
      const attempts = row.attempts + 1
      await tx
        .update(verificationCodes)
        .set({ attempts, usedAt: attempts >= MAX_CODE_ATTEMPTS ? new Date() : null })
        .where(and(eq(verificationCodes.userId, userId), eq(verificationCodes.id, row.id)))
      return false
    },
  }
}

export type CodeRepository = ReturnType<typeof createCodeRepository>
