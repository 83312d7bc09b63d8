import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, errors } from '../../plugins/errors.ts'
import type { UserRow } from '../user/repository.ts'
import { newToken } from './crypto.ts'
import { createMfaRepository } from './repository.ts'

/** How long the `mfa_token` of a login waiting for its second factor lives, and how many codes it may try. */
export const MFA_TOKEN_TTL_S = 300
export const MFA_TOKEN_ATTEMPTS = 5

/** amr values that are a second factor (RFC 8176): one-time code, hardware or software key. */
export const SECOND_FACTOR_AMR = ['otp', 'hwk', 'swk']

export interface MfaGate {
  /** The clock of TOTP time steps (ms); tests inject their own. */
  now(): number
  hasFactor(userId: string): Promise<boolean>
  /**
   * After the password: does this login need a second factor? An admin login without a factor, when
   * ADMIN_MFA_REQUIRED, is refused here (`403 mfa_enrollment_required`).
   */
  required(user: Pick<UserRow, 'id'>, adminLogin: boolean): Promise<boolean>
  /** Answers the login with `401 mfa_required` and a fresh single-use `mfa_token`. */
  challenge(request: FastifyRequest, user: Pick<UserRow, 'id'>, adminLogin: boolean): Promise<never>
}

declare module 'fastify' {
  interface FastifyInstance {
    mfa: MfaGate
    /**
     * preHandler (after `authenticate`) of the sensitive actions: `401 reauthentication_required` unless the
     * token's `auth_time` is within REAUTH_WINDOW_S and, for an account with a second factor, that
     * authentication used it. `POST /v1/auth/reauthenticate` gives such a token.
     */
    requireRecentAuth: preHandlerAsyncHookHandler
  }
}

export interface MfaGateOptions {
  now?: () => number
}

/**
 * The login gate and the step-up check: what the other domains ask of MFA, as decorators, so that
 * auth, user and sharing use them without importing this domain.
 */
export default fp<MfaGateOptions>(
  async function mfaGate(app, opts) {
    const repo = createMfaRepository(app.db)
    const now = opts.now ?? Date.now

    const gate: MfaGate = {
      now,
      hasFactor: (userId) => repo.hasFactor(userId),

      async required(user, adminLogin) {
        if (await repo.hasFactor(user.id)) return true
        if (adminLogin && app.config.ADMIN_MFA_REQUIRED) {
          throw errors.forbidden(
            'Administrators need a second factor. Log in with the user login, enrol one under /v1/users/me/mfa, then use the admin login again.',
            'mfa_enrollment_required',
          )
        }
        return false
      },

      async challenge(request, user, adminLogin) {
        const { token, hash } = newToken()
        await repo.createLoginToken({
          userId: user.id,
          tokenHash: hash,
          clientId: request.clientApp?.id ?? null,
          admin: adminLogin,
          ttlS: MFA_TOKEN_TTL_S,
        })
        throw new AppError(
          401,
          'mfa_required',
          'The password is right; this account also needs its second factor: POST /v1/auth/mfa/verify with the mfa_token.',
          undefined,
          undefined,
          { mfa_token: token, mfa_token_expires_in: MFA_TOKEN_TTL_S },
        )
      },
    }
    app.decorate('mfa', gate)

    app.decorate('requireRecentAuth', async function requireRecentAuth(request: FastifyRequest) {
      const { auth_time: authTime, amr = [], sub } = request.user
      const recent = typeof authTime === 'number' && Date.now() / 1000 - authTime <= app.config.REAUTH_WINDOW_S
      const hasFactor = await repo.hasFactor(sub)
      if (recent && (!hasFactor || amr.some((m) => SECOND_FACTOR_AMR.includes(m)))) return
      throw errors.unauthorized(
        'reauthentication_required',
        hasFactor
          ? 'Confirm it is you with your second factor: POST /v1/auth/reauthenticate with a code or a passkey, then retry with the new access token.'
          : 'Confirm it is you: POST /v1/auth/reauthenticate with your password, then retry with the new access token.',
      )
    })
  },
  { name: 'mfa-gate', dependencies: ['config', 'db', 'auth', 'errors'] },
)
