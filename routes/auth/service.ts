import { createHash, randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type RefreshClaims, accountLocked, verificationDeadlinePassed } from '../../plugins/auth.ts'
import { type AppError, errors } from '../../plugins/errors.ts'
import { type UserRow, createUserRepository, normaliseEmail } from '../user/repository.ts'
import { createCodeRepository } from './code-repository.ts'
import { createHistoryRepository } from './history-repository.ts'
import { isNewLogin, newLoginMail } from './new-login.ts'
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.ts'
import { createSessionRepository } from './session-repository.ts'

export const RESET_CODE_TTL_S = 15 * 60
export const VERIFICATION_CODE_TTL_S = 7 * 24 * 3600

// Per-account backoff: from the 5th failure within an hour each further attempt waits twice as long
// (1 s, 2 s, 4 s … capped at 15 min); past 100 failures in the hour the account refuses logins until it passes.
const FAILURE_WINDOW_S = 3600
const BACKOFF_FROM = 5
const HARD_LIMIT = 100

/** What a session's tokens claim about how the user authenticated (stored on the session, kept by refresh). */
export interface SessionAuth {
  method: 'password' | 'passkey' | 'mfa'
  amr: string[]
  aal: number
  /** Defaults to now (a login happening now). */
  authTime?: Date
}

export const PASSWORD_AUTH: SessionAuth = { method: 'password', amr: ['pwd'], aal: 1 }

export interface Tokens {
  access: string
  refresh: string
  expiresIn: number
}

/** The claims a session's refreshed tokens keep. */
export function sessionAuth(session: {
  authMethod: SessionAuth['method']
  amr: string[]
  aal: number
  authTime: Date
}) {
  return { method: session.authMethod, amr: session.amr, aal: session.aal, authTime: session.authTime }
}

export function requestMeta(request: FastifyRequest) {
  const ua = request.headers['user-agent']
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null }
}

/** The auth domain's operations; routes stay thin and call these. */
export function createAuthService(app: FastifyInstance) {
  const { config, db, mailer } = app
  const users = createUserRepository(db)
  const sessions = createSessionRepository(db)
  const history = createHistoryRepository(db, (err) => app.log.warn({ err }, 'the GeoIP database could not be read'))
  const codes = createCodeRepository(config.JWT_SECRET)

  /**
   * The pair of one rotation, computed from what the session row keeps (the refresh token id, the time of
   * issue, the role and how the user authenticated): the same inputs give byte-identical tokens, so a refresh
   * retried within the reuse window can answer the very pair the first one got, from any process.
   */
  function issueTokens(
    user: Pick<UserRow, 'id'>,
    sessionId: string,
    refreshJti: string,
    role: 'user' | 'admin',
    auth: SessionAuth = PASSWORD_AUTH,
    issuedAt = new Date(),
  ): Tokens {
    const now = Math.floor(issuedAt.getTime() / 1000)
    const access = app.jwt.sign({
      sub: user.id,
      sid: sessionId,
      role,
      // Unique per rotation (derived from the refresh token id), so two tokens never coincide (logs, audits).
      jti: createHash('sha256').update(`access:${refreshJti}`).digest('base64url').slice(0, 22),
      iat: now,
      nbf: now,
      exp: now + config.ACCESS_TOKEN_TTL_S,
      // How and when the user proved who they are (RFC 8176, OIDC Core §2): step-up reads these.
      amr: auth.amr,
      aal: auth.aal,
      auth_time: Math.floor((auth.authTime ?? issuedAt).getTime() / 1000),
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
    // The account's failures are kept under its user id (Citus, docs/scaling.md): find whose address it is.
    const account = await users.findByEmail(email)
    const { failures, last } = await history.recentFailures(email, account?.id ?? null, FAILURE_WINDOW_S)
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
    return verificationDeadlinePassed(
      user.emailVerifiedAt ? null : user.createdAt,
      config.EMAIL_VERIFICATION_DEADLINE_DAYS,
    )
  }

  /**
   * Opens a session for a user who has proved who they are (password, second factor or passkey):
   * session limit, login history, the new-login mail, tokens. The MFA and passkey logins end here too.
   * `role` is the session's: `admin` only for the admin login (admin power comes from it alone).
   */
  async function openSession(
    request: FastifyRequest,
    user: UserRow,
    auth: SessionAuth,
    role: 'user' | 'admin',
  ): Promise<Tokens> {
    const meta = requestMeta(request)
    const email = user.email
    const fail = async (reason: string, error: AppError, userId: string | null = user.id) => {
      await history.record({ userId, email, success: false, reason, ...meta })
      throw error
    }

    const refreshJti = randomUUID()
    const issuedAt = new Date()
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
          role,
          refreshJti,
          ...meta,
          expiresAt: new Date(Date.now() + config.REFRESH_TOKEN_TTL_S * 1000),
          authMethod: auth.method,
          amr: auth.amr,
          aal: auth.aal,
        },
        tx,
      )
      // Before this login is in the history: is it from a device kind or network the account has not used?
      const novelty = await isNewLogin(tx, user.id, meta)
      if (novelty && (await users.setting(user.id, 'notifications-security__email', tx))) {
        await mailer.enqueue(tx, newLoginMail(user.email, user.firstName, { ...meta, at: issuedAt }, novelty))
      }
      await history.record({ userId: user.id, email, success: true, reason: null, ...meta }, tx)
      return { sessionId: session.id, authTime: session.authTime }
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
    return issueTokens(user, result.sessionId, refreshJti, role, { ...auth, authTime: result.authTime }, issuedAt)
  }

  return {
    issueTokens,
    openSession,
    throttle,

    /**
     * Password login: one generic failure, equal bcrypt work for unknown emails, session limit, history.
     * `adminOnly` (the admin login) opens an admin-role session, and answers a non-admin's correct password
     * exactly as a wrong one; every other login opens a user-role session, whatever the account's role.
     */
    async login(
      request: FastifyRequest,
      body: { email: string; password: string },
      adminOnly: boolean,
    ): Promise<Tokens> {
      const user = await this.checkCredentials(request, body, adminOnly)
      // Accounts with a second factor (and admins, when ADMIN_MFA_REQUIRED) finish in routes/mfa.
      if (await app.mfa.required(user, adminOnly)) return app.mfa.challenge(request, user, adminOnly)
      return openSession(request, user, PASSWORD_AUTH, adminOnly ? 'admin' : 'user')
    },

    /**
     * The password check of every login (the API's and the OAuth sign-in page's): per-account backoff,
     * one generic failure, equal bcrypt work for unknown e-mails, disabled and locked accounts, the failure
     * in the login history, the rehash when BCRYPT_COST changed. Answers the account; opens nothing.
     */
    async checkCredentials(
      request: FastifyRequest,
      body: { email: string; password: string },
      adminOnly: boolean,
    ): Promise<UserRow> {
      const meta = requestMeta(request)
      const email = normaliseEmail(body.email)
      await throttle(email)
      const user = await users.findByEmail(email)
      const ok = await verifyPassword(body.password, user?.passwordHash ?? (await dummyHash(config.BCRYPT_COST)))
      const fail = async (reason: string, error: AppError, userId = user?.id ?? null) => {
        await history.record({ userId, email, success: false, reason, ...meta })
        throw error
      }
      // Before any other check, so that the admin login tells a non-admin nothing the password could confirm.
      if (!user || !ok || (adminOnly && user.role !== 'admin')) {
        return fail(
          'invalid_credentials',
          errors.unauthorized('invalid_credentials', 'Email or password is incorrect.'),
        )
      }
      if (user.disabledAt)
        return fail('account_disabled', errors.forbidden('This account is disabled.', 'account_disabled'))
      if (isLocked(user)) return fail('account_locked', accountLocked())
      if (needsRehash(user.passwordHash, config.BCRYPT_COST)) {
        await users.setPasswordHash(user.id, await hashPassword(body.password, config.BCRYPT_COST))
      }
      return user
    },

    /**
     * Refresh-token rotation with reuse detection. The token of the previous rotation presented again within
     * REFRESH_REUSE_WINDOW_S of that rotation (two requests in flight, a lost reply) answers the pair that
     * rotation issued, unchanged; any other used token revokes the whole session (`token_reused`). The state
     * is the session row, locked for the decision, so it holds across processes.
     */
    async refresh(token: string, clientId: string | null): Promise<Tokens> {
      let claims: RefreshClaims
      try {
        claims = app.jwt.verify<RefreshClaims>(token)
      } catch (err) {
        if ((err as { code?: string }).code === 'FAST_JWT_EXPIRED') {
          throw errors.unauthorized('token_expired', 'The refresh token has expired; log in again.')
        }
        throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
      }
      if (
        claims.typ !== 'refresh' ||
        typeof claims.sub !== 'string' ||
        typeof claims.sid !== 'string' ||
        typeof claims.jti !== 'string'
      ) {
        throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
      }
      const outcome = await app.transactionEndingSessions(async (tx, end) => {
        // By the user the refresh token names and its session (signed together), one shard on Citus.
        const session = await sessions.getForUpdate(claims.sub, claims.sid, tx)
        if (!session) return { error: 'invalid' as const }
        if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) return { error: 'revoked' as const }
        // Checked before the token is looked at: another app's refresh neither rotates nor revokes the session.
        if (session.clientId === null || session.clientId !== clientId) return { error: 'client' as const }
        const user = await users.findById(session.userId, tx)
        if (!user || user.disabledAt) return { error: 'revoked' as const }
        if (isLocked(user)) return { error: 'locked' as const }
        const role = session.role === 'admin' && user.role === 'admin' ? ('admin' as const) : ('user' as const)
        const windowMs = config.REFRESH_REUSE_WINDOW_S * 1000
        if (
          claims.jti === session.previousRefreshJti &&
          session.rotatedAt !== null &&
          Date.now() - session.rotatedAt.getTime() <= windowMs
        ) {
          return {
            tokens: issueTokens(user, session.id, session.refreshJti, role, sessionAuth(session), session.rotatedAt),
          }
        }
        if (claims.jti !== session.refreshJti) {
          await end(session.userId, 'token_reused', { only: session.id })
          return { error: 'reused' as const }
        }
        const next = randomUUID()
        const rotatedAt = new Date()
        await sessions.rotate(
          session.userId,
          session.id,
          claims.jti,
          next,
          new Date(rotatedAt.getTime() + config.REFRESH_TOKEN_TTL_S * 1000),
          rotatedAt,
          tx,
        )
        return { tokens: issueTokens(user, session.id, next, role, sessionAuth(session), rotatedAt) }
      })
      if ('tokens' in outcome && outcome.tokens) return outcome.tokens
      switch (outcome.error) {
        case 'reused':
          throw errors.unauthorized(
            'token_reused',
            'This refresh token was already used; the session is revoked for safety.',
          )
        case 'revoked':
          throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
        case 'client':
          throw errors.unauthorized(
            'client_mismatch',
            'This refresh token belongs to another client app; log in through this app.',
          )
        case 'locked':
          throw accountLocked()
        default:
          throw errors.unauthorized('invalid_token', 'The refresh token is not valid.')
      }
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
