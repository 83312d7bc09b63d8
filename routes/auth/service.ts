import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RefreshClaims } from '../../plugins/auth.ts'
import { type AppError, errors } from '../../plugins/errors.ts'
import { type UserRow, createUserRepository, normaliseEmail } from '../user/repository.ts'
import { createCodeRepository } from './code-repository.ts'
import { createHistoryRepository } from './history-repository.ts'
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.ts'
import { createSessionRepository } from './session-repository.ts'

export const RESET_CODE_TTL_S = 15 * 60
export const VERIFICATION_CODE_TTL_S = 7 * 24 * 3600

// Per-account backoff: from the 5th failure within an hour each further attempt waits twice as long
// (1 s, 2 s, 4 s … capped at 15 min); past 100 failures in the hour the account refuses logins until it passes.
const FAILURE_WINDOW_S = 3600
const BACKOFF_FROM = 5
const HARD_LIMIT = 100

export interface Tokens {
  access: string
  refresh: string
  expiresIn: number
}

export function requestMeta(request: FastifyRequest) {
  const ua = request.headers['user-agent']
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null }
}

/** The auth domain's operations; routes stay thin and call these. */
export function createAuthService(app: FastifyInstance) {
  const { config, db } = app
  const users = createUserRepository(db)
  const sessions = createSessionRepository(db)
  const history = createHistoryRepository(db)
  const codes = createCodeRepository(config.JWT_SECRET)

  function issueTokens(user: Pick<UserRow, 'id' | 'role'>, sessionId: string, refreshJti: string): Tokens {
    const now = Math.floor(Date.now() / 1000)
    const access = app.jwt.sign({
      sub: user.id,
      sid: sessionId,
      role: user.role,
      // Unique per token, so two tokens issued in the same second still differ (logs, audits).
      jti: randomUUID(),
      iat: now,
      nbf: now,
      exp: now + config.ACCESS_TOKEN_TTL_S,
    } as never)
    const refresh = app.jwt.sign({
      typ: 'refresh',
      sub: user.id,
      sid: sessionId,
      jti: refreshJti,
      iat: now,
      exp: now + config.REFRESH_TOKEN_TTL_S,
    } as never)
    return { access, refresh, expiresIn: config.ACCESS_TOKEN_TTL_S }
  }

  async function throttle(email: string) {
    const { failures, last } = await history.recentFailures(email, FAILURE_WINDOW_S)
    if (failures >= HARD_LIMIT) {
      throw errors.tooMany(
        'rate_limited',
        'Too many failed logins for this account; try again later.',
        FAILURE_WINDOW_S,
      )
    }
    if (failures >= BACKOFF_FROM && last) {
      const waitMs = Math.min(900, 2 ** (failures - BACKOFF_FROM)) * 1000
      const left = last.getTime() + waitMs - Date.now()
      if (left > 0)
        throw errors.tooMany('rate_limited', 'Too many failed logins; wait before trying again.', left / 1000)
    }
  }

  function isLocked(user: UserRow): boolean {
    if (user.emailVerifiedAt) return false
    const deadline = user.createdAt.getTime() + config.EMAIL_VERIFICATION_DEADLINE_DAYS * 86400_000
    return Date.now() > deadline
  }

  return {
    issueTokens,

    /** Password login: one generic failure, equal bcrypt work for unknown emails, session limit, history. */
    async login(
      request: FastifyRequest,
      body: { email: string; password: string },
      adminOnly: boolean,
    ): Promise<Tokens> {
      const meta = requestMeta(request)
      const email = normaliseEmail(body.email)
      await throttle(email)
      const user = await users.findByEmail(email)
      const ok = await verifyPassword(body.password, user?.passwordHash ?? (await dummyHash(config.BCRYPT_COST)))
      const fail = async (reason: string, error: AppError, userId = user?.id ?? null) => {
        await history.record({ userId, email, success: false, reason, ...meta })
        throw error
      }
      if (!user || !ok) {
        return fail(
          'invalid_credentials',
          errors.unauthorized('invalid_credentials', 'Email or password is incorrect.'),
        )
      }
      if (user.disabledAt)
        return fail('account_disabled', errors.forbidden('This account is disabled.', 'account_disabled'))
      if (isLocked(user)) {
        return fail(
          'account_locked',
          errors.forbidden(
            'Verify your e-mail address to unlock this account; a new link can be requested.',
            'account_locked',
          ),
        )
      }
      if (adminOnly && user.role !== 'admin')
        return fail('forbidden', errors.forbidden('This login is for administrators.'))
      if (needsRehash(user.passwordHash, config.BCRYPT_COST)) {
        await users.setPasswordHash(user.id, await hashPassword(body.password, config.BCRYPT_COST))
      }

      const refreshJti = randomUUID()
      const result = await app.transactionEndingSessions(async (tx, end) => {
        // An account deleted while this login waited for the lock: no session for a user who is gone.
        if (!(await users.lock(user.id, tx))) return { gone: true as const }
        const active = await sessions.countActive(user.id, tx)
        if (active >= config.MAX_SESSIONS) {
          if (config.SESSION_LIMIT_POLICY === 'reject') return { tooMany: true as const }
          for (const s of await sessions.leastRecentlyUsed(user.id, active - config.MAX_SESSIONS + 1, tx)) {
            await end(user.id, 'evicted', { only: s.id })
          }
        }
        const session = await sessions.create(
          {
            userId: user.id,
            clientId: request.clientApp?.id ?? null,
            refreshJti,
            ...meta,
            expiresAt: new Date(Date.now() + config.REFRESH_TOKEN_TTL_S * 1000),
          },
          tx,
        )
        await history.record({ userId: user.id, email, success: true, reason: null, ...meta }, tx)
        return { sessionId: session.id }
      })
      if ('gone' in result) {
        const error = errors.unauthorized('invalid_credentials', 'Email or password is incorrect.')
        return fail('invalid_credentials', error, null)
      }
      if ('tooMany' in result) {
        return fail(
          'too_many_sessions',
          errors.tooMany(
            'too_many_sessions',
            `This account already has ${config.MAX_SESSIONS} active sessions; log out of one first.`,
          ),
        )
      }
      return issueTokens(user, result.sessionId, refreshJti)
    },

    /** Refresh-token rotation with reuse detection (a second use revokes the whole session). */
    async refresh(token: string): Promise<Tokens> {
      let claims: RefreshClaims
      try {
        claims = app.jwt.verify<RefreshClaims>(token)
      } catch (err) {
        if ((err as { code?: string }).code === 'FAST_JWT_EXPIRED') {
          throw errors.unauthorized('token_expired', 'The refresh token has expired; log in again.')
        }
        throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
      }
      if (claims.typ !== 'refresh' || typeof claims.sid !== 'string' || typeof claims.jti !== 'string') {
        throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
      }
      const outcome = await app.transactionEndingSessions(async (tx, end) => {
        const session = await sessions.getForUpdate(claims.sid, tx)
        if (!session || session.userId !== claims.sub) return { error: 'invalid' as const }
        if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) return { error: 'revoked' as const }
        const user = await users.findById(session.userId, tx)
        if (!user || user.disabledAt) return { error: 'revoked' as const }
        const graceMs = config.REFRESH_REUSE_GRACE_S * 1000
        const withinGrace =
          graceMs > 0 &&
          claims.jti === session.previousRefreshJti &&
          session.rotatedAt !== null &&
          Date.now() - session.rotatedAt.getTime() <= graceMs
        if (claims.jti !== session.refreshJti && !withinGrace) {
          await end(session.userId, 'token_reused', { only: session.id })
          return { error: 'reused' as const }
        }
        const next = randomUUID()
        // Within the grace the lost rotation is replaced; the previous token stays the one that was presented.
        await sessions.rotate(
          session.id,
          withinGrace ? (session.previousRefreshJti as string) : claims.jti,
          next,
          new Date(Date.now() + config.REFRESH_TOKEN_TTL_S * 1000),
          // The grace is counted from the first rotation, not extended by retries.
          withinGrace ? (session.rotatedAt as Date) : new Date(),
          tx,
        )
        return { tokens: issueTokens(user, session.id, next) }
      })
      if ('tokens' in outcome && outcome.tokens) return outcome.tokens
      if (outcome.error === 'reused') {
        throw errors.unauthorized(
          'token_reused',
          'This refresh token was already used; the session is revoked for safety.',
        )
      }
      if (outcome.error === 'revoked')
        throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
    },

    async logout(userId: string, sessionId: string) {
      await app.endSessions(userId, 'logout', { only: sessionId })
    },

    /** Ends every session of a user (sign-out everywhere, password reset, disable). */
    async revokeAllSessions(userId: string, reason: string, exceptSessionId?: string) {
      return (await app.endSessions(userId, reason, { except: exceptSessionId })).length
    },

    codes,
    users,
    sessions,
    history,
  }
}

export type AuthService = ReturnType<typeof createAuthService>
