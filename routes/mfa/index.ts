import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { TokensSchema } from '../auth/schemas.ts'
import {
  IdParamsSchema,
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { createUserRepository } from '../user/repository.ts'
import {
  AddPasskeyBodySchema,
  AdminMfaResetSchema,
  AuthenticationOptionsSchema,
  CodeBodySchema,
  FactorsSchema,
  MfaTokenBodySchema,
  MfaVerifyBodySchema,
  PasskeyLoginBodySchema,
  PasskeySchema,
  ReauthenticateBodySchema,
  RecoveryCodesSchema,
  RegistrationOptionsSchema,
  RenamePasskeyBodySchema,
  TotpEnrolmentSchema,
} from './schemas.ts'
import { MAX_PASSKEYS, createMfaService, toPasskey } from './service.ts'

const BODY_ERRORS = [400, 413, 415] as const
const perIp = (max: number, timeWindow: number) => ({ rateLimit: { max, timeWindow } })
const gone = () => errors.unauthorized('session_revoked', 'This session has ended; log in again.')
const STEP_UP =
  ' Needs a recent authentication: `401 reauthentication_required` unless the access token comes from a login or `POST /v1/auth/reauthenticate` within REAUTH_WINDOW_S (600 s), made with the second factor when the account has one.'

/**
 * Second factors and passkeys. Registered under /v1: the caller's own factors (/users/me/…), the
 * login steps that have no user yet (/auth/…, client token) and the admin's reset.
 */
const mfaRoutes: FastifyPluginAsyncTypebox = async function mfaRoutes(app) {
  const mfa = createMfaService(app)
  const users = createUserRepository(app.db)
  const me = async (userId: string) => (await users.findById(userId)) ?? Promise.reject(gone())
  const bearer = { onRequest: app.authenticate }
  const stepUp = { onRequest: app.authenticate, preHandler: app.requireRecentAuth }
  const tags = ['mfa']

  app.get(
    '/users/me/mfa',
    {
      ...bearer,
      schema: {
        tags,
        summary: 'My second factors',
        security: SECURITY.bearer,
        response: { 200: FactorsSchema, ...errorResponses(401) },
      },
    },
    async function listFactors(request) {
      return mfa.factors(request.user.sub)
    },
  )

  app.post(
    '/users/me/mfa/totp',
    {
      ...bearer,
      config: perIp(20, 3600_000),
      schema: {
        tags,
        summary: 'Start setting up an authenticator app (TOTP)',
        description:
          'Answers a new secret, its `otpauth://` URI and a QR code of it (RFC 6238: SHA-1, 6 digits, 30 s). The factor is not active until `POST /v1/users/me/mfa/totp/confirm` gets a valid code; starting again replaces a pending secret. Already active: `409 totp_already_enabled`. The secret is stored encrypted (AES-256-GCM).',
        security: SECURITY.bearer,
        response: { 200: TotpEnrolmentSchema, ...errorResponses(401, 409, 429) },
      },
    },
    async function startTotp(request) {
      return mfa.startTotp(await me(request.user.sub))
    },
  )

  app.post(
    '/users/me/mfa/totp/confirm',
    {
      ...bearer,
      config: perIp(30, 900_000),
      schema: {
        tags,
        summary: 'Activate the authenticator app with its first code',
        description:
          'A code of the current 30 s step or the one before or after activates the factor and answers ten recovery codes, shown this once. Wrong code: `400 invalid_code`; nothing pending: `404 not_found`; already active: `409 totp_already_enabled`. The owner is told by e-mail.',
        security: SECURITY.bearer,
        body: CodeBodySchema,
        response: { 200: RecoveryCodesSchema, ...errorResponses(...BODY_ERRORS, 401, 404, 409, 429) },
      },
    },
    async function confirmTotp(request) {
      return mfa.confirmTotp(await me(request.user.sub), request.body.code)
    },
  )

  app.delete(
    '/users/me/mfa/totp',
    {
      ...stepUp,
      schema: {
        tags,
        summary: 'Remove the authenticator app',
        description: `The owner is told by e-mail. Without any factor left the recovery codes go too, and logins need the password alone again.${STEP_UP} None set up: \`404 not_found\`.`,
        security: SECURITY.bearer,
        response: { 200: StatusSuccessSchema, ...errorResponses(401, 404) },
      },
    },
    async function removeTotp(request) {
      await mfa.removeTotp(await me(request.user.sub))
      return SUCCESS
    },
  )

  app.post(
    '/users/me/mfa/recovery-codes',
    {
      ...stepUp,
      schema: {
        tags,
        summary: 'Make ten new recovery codes (the old ones stop working)',
        description: `Shown this once. Needs a second factor set up (\`409 no_second_factor\`).${STEP_UP}`,
        security: SECURITY.bearer,
        response: { 200: RecoveryCodesSchema, ...errorResponses(401, 409) },
      },
    },
    async function regenerateRecoveryCodes(request) {
      return mfa.regenerateRecoveryCodes(await me(request.user.sub))
    },
  )

  app.post(
    '/users/me/passkeys/options',
    {
      ...bearer,
      config: perIp(30, 900_000),
      schema: {
        tags,
        summary: 'Options to register a new passkey',
        description: `Pass them to \`navigator.credentials.create()\` (e.g. through \`PublicKeyCredential.parseCreationOptionsFromJSON\`), then send the result to \`POST /v1/users/me/passkeys\`. The credential is discoverable, so it also logs in without a password. At most ${MAX_PASSKEYS} passkeys (\`409 too_many_passkeys\`).`,
        security: SECURITY.bearer,
        response: { 200: RegistrationOptionsSchema, ...errorResponses(401, 409, 429) },
      },
    },
    async function passkeyRegistrationOptions(request) {
      return mfa.registrationOptions(await me(request.user.sub))
    },
  )

  app.post(
    '/users/me/passkeys',
    {
      ...bearer,
      config: perIp(30, 900_000),
      schema: {
        tags,
        summary: 'Register a passkey',
        description:
          'The `toJSON()` of the credential `navigator.credentials.create()` made from the options. Checked against the challenge (once, 5 minutes), WEBAUTHN_ORIGINS and WEBAUTHN_RP_ID: `400 passkey_rejected` otherwise; one already registered: `409 passkey_exists`. The owner is told by e-mail.',
        security: SECURITY.bearer,
        body: AddPasskeyBodySchema,
        response: { 201: PasskeySchema, ...errorResponses(...BODY_ERRORS, 401, 409, 429) },
      },
    },
    async function addPasskey(request, reply) {
      const body = request.body
      const passkey = await mfa.addPasskey(
        await me(request.user.sub),
        body.response as unknown as RegistrationResponseJSON,
        body.name,
      )
      return reply.status(201).send(passkey)
    },
  )

  app.get(
    '/users/me/passkeys',
    {
      ...bearer,
      schema: {
        tags,
        summary: 'My passkeys, newest first',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(PasskeySchema), ...errorResponses(400, 401) },
      },
    },
    async function listPasskeys(request) {
      const after = decodeTimeCursor(request.query.cursor)
      return keysetPage(
        request.query,
        (take) => mfa.repo.pagePasskeys(request.user.sub, take, after),
        toPasskey,
        (p) => encodeTimeCursor(p.createdAt, p.id),
      )
    },
  )

  app.patch(
    '/users/me/passkeys/:id',
    {
      ...bearer,
      schema: {
        tags,
        summary: 'Rename a passkey',
        description: "Another account's passkey or an unknown id: `404 not_found`.",
        security: SECURITY.bearer,
        params: IdParamsSchema,
        body: RenamePasskeyBodySchema,
        response: { 200: PasskeySchema, ...errorResponses(...BODY_ERRORS, 401, 404) },
      },
    },
    async function renamePasskey(request) {
      const row = await mfa.repo.renamePasskey(request.user.sub, request.params.id, request.body.name.trim())
      if (!row) throw errors.notFound('No such passkey.')
      return toPasskey(row)
    },
  )

  app.delete(
    '/users/me/passkeys/:id',
    {
      ...stepUp,
      schema: {
        tags,
        summary: 'Delete a passkey',
        description: `It stops working at once; the owner is told by e-mail.${STEP_UP} Another account's passkey or an unknown id: \`404 not_found\`.`,
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deletePasskey(request) {
      await mfa.removePasskey(await me(request.user.sub), request.params.id)
      return SUCCESS
    },
  )

  // The login steps (client token, no user yet)

  app.post(
    '/auth/mfa/verify',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: {
        tags: ['auth'],
        summary: 'Finish a login with its second factor',
        description:
          'After `401 mfa_required` from a login: the `mfa_token` (single use, 5 minutes, from the same client app) and one of `code` (a TOTP code, ±1 step, each step once; or a recovery code, each once) or `passkey` (an assertion made with `POST /v1/auth/mfa/passkey/options`). Answers the login\'s tokens, whose access token claims `amr` (e.g. `["pwd","otp"]`) and `aal: 2`. Wrong code: `401 invalid_code`; wrong passkey: `401 passkey_rejected`; token wrong, used, expired or out of its 5 tries: `401 invalid_mfa_token`. Failed codes count toward the account\'s login backoff (`429 rate_limited` with Retry-After).',
        security: SECURITY.clientToken,
        body: MfaVerifyBodySchema,
        response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function verifyMfa(request) {
      const body = request.body
      return mfa.verifyLogin(request, { ...body, passkey: body.passkey as unknown as AuthenticationResponseJSON })
    },
  )

  app.post(
    '/auth/mfa/passkey/options',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: {
        tags: ['auth'],
        summary: 'Passkey options for the second step of a login',
        description:
          "For `navigator.credentials.get()`: the account's passkeys, a challenge valid once for 5 minutes. Unknown, used or expired `mfa_token`: `401 invalid_mfa_token`; no passkey on the account: `400 no_passkey`.",
        security: SECURITY.clientToken,
        body: MfaTokenBodySchema,
        response: { 200: AuthenticationOptionsSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function mfaPasskeyOptions(request) {
      return mfa.loginPasskeyOptions(request, request.body.mfa_token)
    },
  )

  app.post(
    '/auth/passkey/options',
    {
      onRequest: app.requireClient,
      config: perIp(60, 60_000),
      schema: {
        tags: ['auth'],
        summary: 'Options for a passwordless login with a passkey',
        description:
          'No account is named: the authenticator offers its discoverable credentials for WEBAUTHN_RP_ID and must verify the user. The challenge works once, for 5 minutes, on any server process.',
        security: SECURITY.clientToken,
        response: { 200: AuthenticationOptionsSchema, ...errorResponses(401, 429) },
      },
    },
    async function passkeyLoginOptions() {
      return mfa.assertionOptions('login', null)
    },
  )

  app.post(
    '/auth/passkey/login',
    {
      onRequest: app.requireClient,
      config: perIp(30, 60_000),
      schema: {
        tags: ['auth'],
        summary: 'Log in with a passkey',
        description:
          'The `toJSON()` of the assertion `navigator.credentials.get()` made from `POST /v1/auth/passkey/options`. Answers the login\'s tokens; the access token claims `amr` `["hwk","user"]` (a device-bound key) or `["swk","user"]` (a synced one) and `aal: 2`. Unknown, deleted or refused passkey (wrong challenge, origin, signature, user not verified, a counter that went backwards): `401 passkey_rejected`. Session limit as the password login (`429 too_many_sessions`).',
        security: SECURITY.clientToken,
        body: PasskeyLoginBodySchema,
        response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function passkeyLogin(request) {
      return mfa.passkeyLogin(request, request.body.response as unknown as AuthenticationResponseJSON)
    },
  )

  // Step-up (bearer)

  app.post(
    '/auth/reauthenticate',
    {
      ...bearer,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Confirm it is still you, before a sensitive action',
        description:
          "With exactly one of `password`, `code` (TOTP or recovery code) or `passkey` (an assertion made with `POST /v1/auth/reauthenticate/passkey-options`). Answers new tokens for the same session (the old refresh token is rotated) whose `auth_time` is now and whose `amr` is the method just used; for REAUTH_WINDOW_S they satisfy the sensitive routes (delete account, change password, remove a factor, new recovery codes, share invites). An account with a second factor must use it there; the password alone does not count. Wrong secret: `401 invalid_credentials`, `401 invalid_code` or `401 passkey_rejected`, counted toward the account's login backoff (`429 rate_limited`).",
        security: SECURITY.bearer,
        body: ReauthenticateBodySchema,
        response: { 200: TokensSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function reauthenticate(request) {
      const body = request.body
      return mfa.reauthenticate(request, { ...body, passkey: body.passkey as unknown as AuthenticationResponseJSON })
    },
  )

  app.post(
    '/auth/reauthenticate/passkey-options',
    {
      ...bearer,
      config: perIp(30, 900_000),
      schema: {
        tags: ['auth'],
        summary: 'Passkey options to re-authenticate',
        description:
          'For `navigator.credentials.get()`: my passkeys, a challenge valid once for 5 minutes. No passkey: `400 no_passkey`.',
        security: SECURITY.bearer,
        response: { 200: AuthenticationOptionsSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async function reauthenticatePasskeyOptions(request) {
      if ((await mfa.repo.countPasskeys(request.user.sub)) === 0) {
        throw errors.badRequest('no_passkey', 'This account has no passkey.')
      }
      return mfa.assertionOptions('reauthenticate', request.user.sub)
    },
  )

  // Admin

  app.post(
    '/admin/users/:id/mfa/reset',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        summary: 'Remove every second factor of an account (it lost them)',
        description:
          'The authenticator app, recovery codes and passkeys all go; the account logs in with its password alone until it enrols again. Audited (`user.mfa_reset`); the owner is told by e-mail. Unknown account: `404 not_found`.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: AdminMfaResetSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async function resetFactors(request) {
      const removed = await mfa.resetFactors(request.params.id, (tx, what) =>
        app.audit.record(
          request,
          { action: 'user.mfa_reset', targetType: 'user', targetId: request.params.id, details: what },
          tx,
        ),
      )
      if (!removed) throw errors.notFound('No such user.')
      return { ...SUCCESS, totp_removed: removed.totp > 0, passkeys_removed: removed.passkeys }
    },
  )
}

export default mfaRoutes
