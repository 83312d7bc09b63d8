import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { normaliseEmail } from '../user/repository.ts'
import { authMails } from './mails.ts'
import { hashPassword, isCommonPassword, policyDetails, verifyPassword } from './passwords.ts'
import {
  AuthHistoryEntrySchema,
  ChangePasswordBodySchema,
  ConfirmNewPasswordBodySchema,
  EmailBodySchema,
  LoginBodySchema,
  RefreshBodySchema,
  RegisterBodySchema,
  TokensSchema,
  VerifyEmailBodySchema,
  VerifyEmailQuerySchema,
} from './schemas.ts'
import { RESET_CODE_TTL_S, VERIFICATION_CODE_TTL_S, createAuthService } from './service.ts'
import { parseUserAgent } from './user-agent.ts'

const BODY_ERRORS = [400, 413, 415] as const
const perIp = (max: number, timeWindow: number) => ({ rateLimit: { max, timeWindow } })

/** Checks a new password against the policy beyond its length; throws the documented 400s. */
function checkNewPassword(field: string, password: string) {
  const details = policyDetails(field, password)
  if (details.length) throw errors.validation(details, 'The password does not meet the policy.')
  if (isCommonPassword(password)) {
    throw errors.badRequest('password_too_common', 'This password is among the most common ones; choose another.', [
      { field, problem: 'is too common' },
    ])
  }
}

const authRoutes: FastifyPluginAsyncTypebox = async function authRoutes(app) {
  const auth = createAuthService(app)
  const { config, db, mailer, limits } = app

  app.post(
    '/v1/auth/register',
    {
      onRequest: app.requireClient,
      config: perIp(20, 3600_000),
      schema: {
        tags: ['auth'],
        summary: 'Register a new account',
        description:
          'Answers `{"status":"success"}` and e-mails a verification code and link. An address that already has an account gets the same answer (no second account) and its owner is told by e-mail. The account locks (`account_locked` at login) when still unverified after EMAIL_VERIFICATION_DEADLINE_DAYS (default 7).',
        security: SECURITY.clientToken,
        body: RegisterBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function register(request) {
      const body = request.body
      checkNewPassword('password', body.password)
      const email = normaliseEmail(body.email)
      await limits.hit(`register:email:${email}`, 5, 3600)
      // Hash first, whatever happens next: both answers cost the same time.
      const passwordHash = await hashPassword(body.password, config.BCRYPT_COST)
      await db.transaction(async (tx) => {
        const user = await auth.users.create(
          {
            email,
            passwordHash,
            firstName: body.first_name,
            lastName: body.last_name,
            tocAcceptedAt: new Date(body.toc_accepted_at),
            privacyPolicyAcceptedAt: new Date(body.privacy_policy_accepted_at),
          },
          tx,
        )
        if (!user) {
          await mailer.enqueue(tx, authMails.registrationAttempt(email))
          return
        }
        const code = await auth.codes.issue(user.id, 'email_verification', VERIFICATION_CODE_TTL_S, tx)
        await mailer.enqueue(tx, authMails.verification(config, email, user.firstName, code))
      })
      return SUCCESS
    },
  )

  async function verifyEmail(email: string, code: string): Promise<boolean> {
    const user = await auth.users.findByEmail(email)
    if (!user) return false
    if (user.emailVerifiedAt) return true
    return db
      .transaction(async (tx) => {
        const ok = await auth.codes.consume(user.id, 'email_verification', code, tx)
        if (ok) await auth.users.markEmailVerified(user.id, tx)
        return ok
      })
      .finally(() => app.profileCache.invalidate(user.id))
  }

  app.post(
    '/v1/auth/verify_email',
    {
      onRequest: app.requireClient,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Verify the e-mail address with the code from the verification e-mail',
        security: SECURITY.clientToken,
        body: VerifyEmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function verifyEmailByCode(request) {
      if (!(await verifyEmail(request.body.email, request.body.code))) {
        throw errors.badRequest('invalid_code', 'The code is wrong, used or expired.')
      }
      return SUCCESS
    },
  )

  app.get(
    '/v1/auth/verify_email',
    {
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'The link from the verification e-mail: verifies and redirects to the app',
        description:
          'Opened from the e-mail, so it takes no header. Answers 302 to `APP_URL/email-verified`; a wrong, used or expired code answers 404.',
        querystring: VerifyEmailQuerySchema,
        response: {
          302: Type.Null({ description: 'Redirect to the app (Location header)' }),
          ...errorResponses(400, 404, 429),
        },
      },
    },
    async function verifyEmailByLink(request, reply) {
      if (!(await verifyEmail(request.query.email, request.query.code)))
        throw errors.notFound('This link is not valid.')
      return reply.redirect(`${config.APP_URL.replace(/\/$/, '')}/email-verified`, 302)
    },
  )

  app.post(
    '/v1/auth/resend_verification',
    {
      onRequest: app.requireClient,
      config: perIp(10, 3600_000),
      schema: {
        tags: ['auth'],
        summary: 'Send a new verification e-mail',
        description: 'Always `{"status":"success"}`: the answer does not tell whether the address has an account.',
        security: SECURITY.clientToken,
        body: EmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function resendVerification(request) {
      const email = normaliseEmail(request.body.email)
      await limits.hit(`verify:email:${email}`, 3, 3600)
      const user = await auth.users.findByEmail(email)
      if (user && !user.emailVerifiedAt) {
        await db.transaction(async (tx) => {
          const code = await auth.codes.issue(user.id, 'email_verification', VERIFICATION_CODE_TTL_S, tx)
          await mailer.enqueue(tx, authMails.verification(config, email, user.firstName, code))
        })
      }
      return SUCCESS
    },
  )

  const loginSchema = (summary: string, extra: { deprecated?: boolean; description?: string } = {}) => ({
    tags: ['auth'],
    summary,
    ...extra,
    security: SECURITY.clientToken,
    body: LoginBodySchema,
    response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 429) },
  })
  const LOGIN_DESCRIPTION =
    'Wrong email or password: `401 invalid_credentials` (one answer for both). `403 account_locked`: e-mail not verified in time. `403 account_disabled`. `429 too_many_sessions` at MAX_SESSIONS (30) active sessions unless SESSION_LIMIT_POLICY=evict_oldest. `429 rate_limited` with Retry-After after repeated failures (per account, with backoff) or too many attempts from one IP.'

  app.post(
    '/v2/auth/login',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: loginSchema('Log in', { description: LOGIN_DESCRIPTION }),
    },
    async function login(request) {
      return auth.login(request, request.body, false)
    },
  )

  app.post(
    '/v1/auth/login',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: loginSchema('Log in (legacy, same as /v2/auth/login)', {
        deprecated: true,
        description: LOGIN_DESCRIPTION,
      }),
    },
    async function loginLegacy(request) {
      return auth.login(request, request.body, false)
    },
  )

  app.post(
    '/v2/auth/login/admin',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: loginSchema('Log in as an administrator', {
        description: `${LOGIN_DESCRIPTION} A correct login of an account without the admin role: \`403 forbidden\`.`,
      }),
    },
    async function loginAdmin(request) {
      return auth.login(request, request.body, true)
    },
  )

  app.post(
    '/v1/auth/refresh',
    {
      onRequest: app.requireClient,
      config: perIp(120, 60_000),
      schema: {
        tags: ['auth'],
        summary: 'Rotate the access and refresh tokens',
        description:
          'A refresh token works once. Presenting one that was already used revokes its whole session and answers `401 token_reused` (unless within REFRESH_REUSE_GRACE_S of its rotation, default 0). Expired: `401 token_expired`; revoked session: `401 session_revoked`.',
        security: SECURITY.clientToken,
        body: RefreshBodySchema,
        response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function refresh(request) {
      return auth.refresh(request.body.refresh)
    },
  )

  app.post(
    '/v1/auth/forgot_password',
    {
      onRequest: app.requireClient,
      config: perIp(20, 3600_000),
      schema: {
        tags: ['auth'],
        summary: 'Start the forgotten-password flow: a 6-digit code is e-mailed',
        description:
          'Always `{"status":"success"}`, whether or not the address has an account. The code is valid 15 minutes, works once, and 5 wrong tries burn it.',
        security: SECURITY.clientToken,
        body: EmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function forgotPassword(request) {
      const email = normaliseEmail(request.body.email)
      await limits.hit(`forgot:email:${email}`, 5, 3600)
      const user = await auth.users.findByEmail(email)
      if (user && !user.disabledAt) {
        await db.transaction(async (tx) => {
          const code = await auth.codes.issue(user.id, 'password_reset', RESET_CODE_TTL_S, tx)
          await mailer.enqueue(tx, authMails.passwordReset(email, code, RESET_CODE_TTL_S / 60))
        })
      }
      return SUCCESS
    },
  )

  app.post(
    '/v1/auth/confirm_new_password',
    {
      onRequest: app.requireClient,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Set a new password with the e-mailed code',
        description: 'Every session of the account is revoked. A wrong, used or expired code: `400 invalid_code`.',
        security: SECURITY.clientToken,
        body: ConfirmNewPasswordBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function confirmNewPassword(request) {
      const { email, verification_code: code, new_password: password } = request.body
      checkNewPassword('new_password', password)
      const user = await auth.users.findByEmail(email)
      const passwordHash = await hashPassword(password, config.BCRYPT_COST)
      const ok =
        !!user &&
        (await db.transaction(async (tx) => {
          if (!(await auth.codes.consume(user.id, 'password_reset', code, tx))) return false
          await auth.users.setPasswordHash(user.id, passwordHash, tx)
          // A reset proves control of the mailbox, which is what verification asks.
          await auth.users.markEmailVerified(user.id, tx)
          await mailer.enqueue(tx, authMails.passwordChanged(user.email))
          return true
        }))
      if (user) app.profileCache.invalidate(user.id)
      if (!ok || !user) throw errors.badRequest('invalid_code', 'The code is wrong, used or expired.')
      await auth.revokeAllSessions(user.id, 'password_reset')
      return SUCCESS
    },
  )

  app.post(
    '/v1/auth/sign-out',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'Revoke all tokens of an account',
        description:
          "Revokes every session of the account with this email. Allowed with that account's own bearer token, or an admin's (an admin naming an unknown address gets `404 no_such_user`); anyone else gets `403 forbidden`.",
        security: SECURITY.bearer,
        body: EmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 404) },
      },
    },
    async function signOut(request) {
      const target = await auth.users.findByEmail(request.body.email)
      const isSelf = target?.id === request.user.sub
      if (!isSelf && request.user.role !== 'admin') throw errors.forbidden('You can only sign out your own account.')
      if (!target) throw errors.notFound('No account has this e-mail address.', 'no_such_user')
      await auth.revokeAllSessions(target.id, isSelf ? 'sign_out' : 'admin_sign_out')
      return SUCCESS
    },
  )

  app.post(
    '/v1/auth/logout',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'End the current session',
        description: "The session's access and refresh tokens stop working at once.",
        security: SECURITY.bearer,
        response: { 200: StatusSuccessSchema, ...errorResponses(401) },
      },
    },
    async function logout(request) {
      await auth.logout(request.user.sub, request.user.sid)
      return SUCCESS
    },
  )

  app.post(
    '/v1/auth/change_password',
    {
      onRequest: app.authenticate,
      config: perIp(20, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Change the password (old and new)',
        description:
          'Problems are reported per field in `details` (`password_old`, `password_new`). Every other session of the account is revoked; this one stays.',
        security: SECURITY.bearer,
        body: ChangePasswordBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function changePassword(request) {
      const { password_old: oldPassword, password_new: newPassword } = request.body
      const user = await auth.users.findById(request.user.sub)
      if (!user) throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      const details = policyDetails('password_new', newPassword)
      if (!(await verifyPassword(oldPassword, user.passwordHash))) {
        details.unshift({ field: 'password_old', problem: 'is not your current password' })
      }
      if (details.length === 0 && oldPassword === newPassword) {
        details.push({ field: 'password_new', problem: 'must differ from the old password' })
      }
      if (details.length) throw errors.validation(details, 'The password could not be changed.')
      checkNewPassword('password_new', newPassword)
      const passwordHash = await hashPassword(newPassword, config.BCRYPT_COST)
      await db.transaction(async (tx) => {
        await auth.users.setPasswordHash(user.id, passwordHash, tx)
        await mailer.enqueue(tx, authMails.passwordChanged(user.email))
      })
      await auth.revokeAllSessions(user.id, 'password_changed', request.user.sid)
      return SUCCESS
    },
  )

  app.get(
    '/v1/users/me/auth-history',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['user'],
        summary: 'My login attempts, newest first',
        description:
          'Every login attempt on this account, successful or not, with IP and the user agent parsed into browser, OS and device.',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(AuthHistoryEntrySchema), ...errorResponses(400, 401) },
      },
    },
    async function authHistory(request) {
      const after = decodeTimeCursor(request.query.cursor)
      return keysetPage(
        request.query,
        (take) => auth.history.page(request.user.sub, take, after),
        (r) => ({
          id: r.id,
          date_time: r.createdAt.toISOString(),
          success: r.success,
          reason: r.reason,
          ip: r.ip,
          user_agent: r.userAgent,
          ...parseUserAgent(r.userAgent),
        }),
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
    },
  )
}

export default authRoutes
