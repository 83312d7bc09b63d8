import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { instantDate } from '../../plugins/date-time-format.ts'
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
import { deadLink } from '../confirm-page.ts'
import { normaliseEmail } from '../user/repository.ts'
import { placeOf } from './geoip.ts'
import { authMails } from './mails.ts'
import { createPasswordCheck } from './password-check.ts'
import { hashPassword, isCommonPassword, policyDetails } from './passwords.ts'
import {
  AuthHistoryEntrySchema,
  ChangePasswordBodySchema,
  ConfirmNewPasswordBodySchema,
  EmailBodySchema,
  LoginBodySchema,
  LoginErrorSchema,
  RefreshBodySchema,
  RegisterBodySchema,
  TokensSchema,
  VerifyEmailBodySchema,
  VerifyEmailQuerySchema,
} from './schemas.ts'
import { RESET_CODE_TTL_S, VERIFICATION_CODE_TTL_S, createAuthService, requestMeta } from './service.ts'
import { parseUserAgent } from './user-agent.ts'

const BODY_ERRORS = [400, 413, 415] as const
// Each route counts on its own per IP; `groupId` makes routes share one counter (the three logins).
const perIp = (max: number, timeWindow: number, groupId?: string) => ({ rateLimit: { max, timeWindow, groupId } })

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
  const checkAccountPassword = createPasswordCheck(db)

  app.post(
    '/v1/auth/register',
    {
      onRequest: app.requireClient,
      config: perIp(20, 3600_000),
      schema: {
        tags: ['auth'],
        summary: 'Register a new account',
        description:
          'Answers `{"status":"success"}` and e-mails a verification code and link. An address that already has an account gets the same answer in the same time (no second account; both paths hash the password and write once, and the e-mail — a verification code, or a note to the existing owner that someone tried to register — is queued after the answer). The new account can log in at once. The account locks (`account_locked` at login) when still unverified after EMAIL_VERIFICATION_DEADLINE_DAYS (default 7).',
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
      // The same work for a new and a taken address until the answer: the hash, then one write
      // (createOrTouch); the mail — a code, or "someone tried to register" — is queued after it.
      const passwordHash = await hashPassword(body.password, config.BCRYPT_COST)
      const user = await auth.users.createOrTouch({
        email,
        passwordHash,
        firstName: body.first_name,
        lastName: body.last_name,
        tocAcceptedAt: instantDate(body.toc_accepted_at),
        privacyPolicyAcceptedAt: instantDate(body.privacy_policy_accepted_at),
      })
      app.afterAnswer.run(request, 'registration mail', async () => {
        await db.transaction(async (tx) => {
          if (!user) return mailer.enqueue(tx, authMails.registrationAttempt(email))
          const code = await auth.codes.issue(user.id, 'email_verification', VERIFICATION_CODE_TTL_S, tx)
          await mailer.enqueue(tx, authMails.verification(config, email, user.firstName, code))
        })
      })
      return SUCCESS
    },
  )

  // One answer, after the same work, whether the address is unknown, already verified, or unverified
  // with a wrong code: the code lookup runs for all three (an unknown address looks up a nobody's codes).
  const NOBODY = '00000000-0000-0000-0000-000000000000'
  async function verifyEmail(email: string, code: string): Promise<boolean> {
    const user = await auth.users.findByEmail(email)
    const ok = await db.transaction(async (tx) => {
      const right = await auth.codes.consume(user?.id ?? NOBODY, 'email_verification', code, tx)
      if (right && user) await auth.users.markEmailVerified(user.id, tx)
      return right
    })
    if (user) app.profileCache.invalidate(user.id)
    return ok
  }

  app.post(
    '/v1/auth/verify_email',
    {
      onRequest: app.requireClient,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Verify the e-mail address with the code from the verification e-mail',
        description:
          'A right code verifies the address. Anything else — a wrong, used or expired code, an address that is already verified, or one that has no account — answers the same `400 invalid_code`, so the answer does not tell whether an account exists.',
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
      // HEAD gets its own route below: a mail scanner's HEAD must not verify.
      exposeHeadRoute: false,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'The link from the verification e-mail: verifies and redirects to the app',
        description:
          'Opened from the e-mail, so it takes no header. One click: the GET verifies (it only confirms what the mailbox owner received) and answers 302 to `APP_URL/email-verified`; a HEAD changes nothing. A wrong, used or expired code, an already verified address and an unknown one all answer the same `404 not_found` (JSON; an HTML page when the request accepts `text/html`).',
        querystring: VerifyEmailQuerySchema,
        response: {
          302: Type.Null({ description: 'Redirect to the app (Location header)' }),
          ...errorResponses(400, 404, 429),
        },
      },
    },
    async function verifyEmailByLink(request, reply) {
      if (!(await verifyEmail(request.query.email, request.query.code))) {
        return deadLink(request, reply, config, 'link')
      }
      return reply.redirect(`${config.APP_URL.replace(/\/$/, '')}/email-verified`, 302)
    },
  )

  app.head(
    '/v1/auth/verify_email',
    {
      schema: {
        tags: ['auth'],
        summary: 'What a mail scanner or link preview gets for the verification link: nothing happens',
        description: 'Always 200 with no body, whatever the code; the address is not verified and no code is used.',
        querystring: Type.Object(
          { email: Type.Optional(Type.String()), code: Type.Optional(Type.String()) },
          { additionalProperties: true },
        ),
        response: { 200: Type.Null({ description: 'Nothing was done' }) },
      },
    },
    async function verifyEmailLinkHead(_request, reply) {
      return reply.code(200).type('text/html; charset=utf-8').send(null)
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
        description:
          'Always `{"status":"success"}`, in the same time: the account is looked up and the mail queued only after the answer (the earlier codes stop working), so neither the answer nor its timing tells whether the address has an account or is verified already. At most 3 an hour for one address and 10 from one IP.',
        security: SECURITY.clientToken,
        body: EmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function resendVerification(request) {
      const email = normaliseEmail(request.body.email)
      await limits.hit(`verify:email:${email}`, 3, 3600)
      // Known or not, nothing else happens before the answer (see plugins/after-answer.ts).
      app.afterAnswer.run(request, 'verification mail', async () => {
        const user = await auth.users.findByEmail(email)
        if (!user || user.emailVerifiedAt) return
        await db.transaction(async (tx) => {
          const code = await auth.codes.issue(user.id, 'email_verification', VERIFICATION_CODE_TTL_S, tx)
          await mailer.enqueue(tx, authMails.verification(config, email, user.firstName, code))
        })
      })
      return SUCCESS
    },
  )

  const loginSchema = (summary: string, extra: { deprecated?: boolean; description?: string } = {}) => ({
    tags: ['auth'],
    summary,
    ...extra,
    security: SECURITY.clientToken,
    body: LoginBodySchema,
    response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 403, 429), 401: LoginErrorSchema },
  })
  const LOGIN_DESCRIPTION =
    'Wrong email or password: `401 invalid_credentials` (one answer for both). An account with a second factor (authenticator app or passkey): `401 mfa_required` with an `mfa_token` for `POST /v1/auth/mfa/verify`, instead of tokens; accounts without one get the tokens as before. `403 account_locked`: e-mail not verified in time. `403 account_disabled`. `429 too_many_sessions` at MAX_SESSIONS (30) active sessions unless SESSION_LIMIT_POLICY=evict_oldest. `429 rate_limited` with Retry-After after repeated failures (per account, with backoff) or more than 30 login attempts a minute from one IP (the three login routes count together; every other route has its own per-IP counter). The session belongs to the client app of the `x-auth-token`: it is refreshed only through that app and ends when the app is revoked. A successful login from a new device or network e-mails the account (setting `notifications-security__email`, default on): new means its device kind (browser family and OS family from the User-Agent, versions ignored) or its IP network (IPv4 /24, IPv6 /48) appears in no successful login of the account in the last 90 days; the first login of an account is not new.'
  const USER_LOGIN =
    ' The tokens carry the `user` role, also for an administrator: admin power comes from `POST /v2/auth/login/admin` alone.'

  app.post(
    '/v2/auth/login',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000, 'login'),
      schema: loginSchema('Log in', { description: LOGIN_DESCRIPTION + USER_LOGIN }),
    },
    async function login(request) {
      return auth.login(request, request.body, false)
    },
  )

  app.post(
    '/v1/auth/login',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000, 'login'),
      schema: loginSchema('Log in (legacy, same as /v2/auth/login)', {
        deprecated: true,
        description: LOGIN_DESCRIPTION + USER_LOGIN,
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
      config: perIp(30, 60_000, 'login'),
      schema: loginSchema('Log in as an administrator', {
        description: `${LOGIN_DESCRIPTION} The only way to an \`admin\`-role session. An account without the admin role gets exactly the answer of a wrong password (\`401 invalid_credentials\`, counted as a failed login), so this route never confirms a password. The role is read again on every request: a demoted admin's session works as a user's within SESSION_CACHE_TTL_MS. With ADMIN_MFA_REQUIRED (default in production) an admin must finish with a second factor (\`401 mfa_required\`), and one without any is refused (\`403 mfa_enrollment_required\`: enrol one through the user login first); the admin's tokens claim \`aal: 2\`.`,
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
          "Answers a new access and refresh token of the same session. A refresh token works once, with one allowance for phones with two requests in flight: the token of the latest rotation presented again within REFRESH_REUSE_WINDOW_S (default 10 s) of that rotation answers the same pair that rotation issued (byte for byte, from any server process; decided on the locked session row). Any other use of a used token revokes the whole session and answers `401 token_reused`. The refresh must come through the client app that opened the session: another app's `x-auth-token` gets `401 client_mismatch` and the session is left as it was. Expired: `401 token_expired`; revoked session (logout, password change, client app revoked …): `401 session_revoked`; e-mail still unverified past EMAIL_VERIFICATION_DEADLINE_DAYS: `403 account_locked`.",
        security: SECURITY.clientToken,
        body: RefreshBodySchema,
        response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 403, 429) },
      },
    },
    async function refresh(request) {
      const tokens = await auth.refresh(request.body.refresh, request.clientApp?.id ?? null)
      // The history shows every place the account is used from, refreshes included.
      const { sub } = app.jwt.decode<{ sub: string }>(tokens.access) ?? {}
      if (sub) await auth.history.recordRefresh(sub, requestMeta(request))
      return tokens
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
          'Always `{"status":"success"}`, whether or not the address has an account, and in the same time: the account is looked up and the code issued and queued only after the answer has been sent (OWASP Forgot Password Cheat Sheet), so the mail follows within moments. The code is valid 15 minutes, works once, and 5 wrong tries burn it. At most 5 requests an hour for one address and 20 from one IP.',
        security: SECURITY.clientToken,
        body: EmailBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function forgotPassword(request) {
      const email = normaliseEmail(request.body.email)
      await limits.hit(`forgot:email:${email}`, 5, 3600)
      // Known or not, nothing else happens before the answer (see plugins/after-answer.ts).
      app.afterAnswer.run(request, 'password reset mail', async () => {
        const user = await auth.users.findByEmail(email)
        if (!user || user.disabledAt) return
        await db.transaction(async (tx) => {
          const code = await auth.codes.issue(user.id, 'password_reset', RESET_CODE_TTL_S, tx)
          await mailer.enqueue(tx, authMails.passwordReset(email, code, RESET_CODE_TTL_S / 60))
        })
      })
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
          "Revokes every session of the account with this email. Allowed with that account's own bearer token, or an admin's (an admin naming an unknown address gets `404 no_such_user`); anyone else gets `403 forbidden`. An admin signing out another account is an admin action: it is in the audit log (`user.sign_out`), like `POST /v1/admin/users/{id}/sign-out`. An admin's own user-login session (role `user`) is not an admin here.",
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
      const ended = await auth.revokeAllSessions(target.id, isSelf ? 'sign_out' : 'admin_sign_out')
      if (!isSelf) {
        await app.audit.record(request, {
          action: 'user.sign_out',
          targetType: 'user',
          targetId: target.id,
          details: { sessions_revoked: ended, via: '/v1/auth/sign-out' },
        })
      }
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
      preHandler: app.requireRecentAuth,
      config: perIp(20, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Change the password (old and new)',
        description:
          'Problems are reported per field in `details` (`password_old`, `password_new`). Every other session of the account is revoked; this one stays. Wrong current passwords are counted per account (together with account deletion and the other routes that re-check the password): from the 5th within an hour each further try must wait twice as long as the one before (1 s, 2 s, 4 s … 15 min), and past 100 in an hour none is checked; until then the answer is `429 rate_limited` with Retry-After, whatever the address. A right password clears the count. There is also a per-IP limit of 20 tries in 15 minutes. Needs a recent authentication (step-up): `401 reauthentication_required` unless the access token comes from a login or `POST /v1/auth/reauthenticate` within REAUTH_WINDOW_S (600 s), made with the second factor when the account has one.',
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
      if (!(await checkAccountPassword(user, oldPassword, 'change_password'))) {
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
        summary: 'My login attempts and token refreshes, newest first',
        description:
          "Every login attempt on this account, successful or not, and every token refresh (`type: refresh`), so every place the account is used from shows: the IP (the client's, when TRUST_PROXY names the proxy in front), the user agent parsed into browser, OS and device, and the country, city, coordinates and a map link of the address, looked up offline when the entry was written (null for private, loopback and unknown addresses). IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0.",
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
          type: r.type,
          ip: r.ip,
          user_agent: r.userAgent,
          ...parseUserAgent(r.userAgent),
          ...placeOf(r),
        }),
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
    },
  )
}

export default authRoutes
