import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from '../../plugins/errors.ts'
import { isUniqueViolation } from '../journal/db-errors.ts'
import { EMAIL_TAKEN_CONSTRAINT, type UserRow, createUserRepository, normaliseEmail } from '../user/repository.ts'
import { createCodeRepository } from './code-repository.ts'
import { userMails } from './email-change-mails.ts'
import { createPasswordCheck } from './password-check.ts'

/** How long the code sent to the new address works (and the change stays pending). */
export const EMAIL_CHANGE_TTL_S = 24 * 3600

/**
 * Changing the login e-mail, after OWASP's "changing a user's registered e-mail address": the current
 * password in the request, a code sent to the new address, the change made only when that code comes
 * back, the old address told, every other session ended. An address that belongs to another account is
 * never revealed: the requester gets the same pending answer, the other account's owner is told, and
 * no code that could confirm it exists anywhere.
 */
function createEmailChangeService(app: FastifyInstance) {
  const { db, config, mailer, limits } = app
  const users = createUserRepository(db)
  const codes = createCodeRepository(config.JWT_SECRET)
  const checkAccountPassword = createPasswordCheck(db)

  return {
    /** Starts (or replaces) the pending change; answers the user row with `pending_email` set. */
    async request(user: UserRow, newEmail: string, password: string | undefined): Promise<UserRow> {
      if (password === undefined) {
        throw errors.validation(
          [{ field: 'password', problem: 'is required (your current password) to change the e-mail address' }],
          'The e-mail address could not be changed.',
        )
      }
      // Failures are counted per account with backoff, together with the other password re-checks.
      if (!(await checkAccountPassword(user, password, 'change_email'))) {
        throw errors.validation(
          [{ field: 'password', problem: 'is not your current password' }],
          'The e-mail address could not be changed.',
        )
      }
      // Each request mails someone: a few an hour per account.
      await limits.hit(`email-change:mail:${user.id}`, 5, 3600)
      const address = normaliseEmail(newEmail)
      const row = await db.transaction(async (tx) => {
        const owner = await users.findByEmail(address, tx)
        // A code is issued either way (the same work); for a taken address it is mailed to no one.
        const code = await codes.issue(user.id, 'email_change', EMAIL_CHANGE_TTL_S, tx)
        const updated = await users.setPendingEmail(
          user.id,
          address,
          new Date(Date.now() + EMAIL_CHANGE_TTL_S * 1000),
          tx,
        )
        if (owner) await mailer.enqueue(tx, userMails.emailChangeToTakenAddress(address))
        else await mailer.enqueue(tx, userMails.emailChangeCode(address, user.firstName, code, EMAIL_CHANGE_TTL_S))
        return updated
      })
      if (!row) throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      return row
    },

    /** Confirms with the code from the new address; ends every other session. */
    async confirm(userId: string, sessionId: string, code: string): Promise<UserRow> {
      const invalid = () => errors.badRequest('invalid_code', 'The code is wrong, used or expired.')
      let outcome: { user: UserRow; oldEmail: string } | null
      try {
        outcome = await db.transaction(async (tx) => {
          const user = await users.findForUpdate(userId, tx)
          if (!user?.pendingEmail || !user.pendingEmailExpiresAt || user.pendingEmailExpiresAt <= new Date()) {
            return null
          }
          if (!(await codes.consume(user.id, 'email_change', code, tx))) return null
          const changed = await users.applyPendingEmail(user.id, user.pendingEmail, tx)
          if (!changed) return null
          await mailer.enqueue(tx, userMails.emailChanged(user.email, changed.email))
          return { user: changed, oldEmail: user.email }
        })
      } catch (err) {
        // The address was registered by someone else while the change waited.
        if (isUniqueViolation(err, EMAIL_TAKEN_CONSTRAINT)) throw invalid()
        throw err
      }
      app.profileCache.invalidate(userId)
      if (!outcome) throw invalid()
      await app.endSessions(userId, 'email_changed', { except: sessionId })
      return outcome.user
    },
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The e-mail change of the signed-in account: started by `PATCH /v1/users/me` (user domain), confirmed
     * by `POST /v1/users/me/email/confirm`. A credential change, so it lives with auth (codes, password
     * check, sessions) and reaches the user domain as this decorator, not as an import.
     */
    emailChange: ReturnType<typeof createEmailChangeService>
  }
}

export default fp(
  async function emailChangePlugin(app: FastifyInstance) {
    app.decorate('emailChange', createEmailChangeService(app))
  },
  { name: 'email-change', dependencies: ['config', 'db', 'mailer', 'limits', 'auth'] },
)
