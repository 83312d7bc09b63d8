import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { sql } from 'drizzle-orm'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type Provider from 'oidc-provider'
import { AppError, errors } from '../../plugins/errors.ts'
import { noteErrorId } from '../../plugins/metrics.ts'
import { DOCS_CLIENT_ID, OAUTH_SCOPES, isOAuthScope } from '../../plugins/oauth-scopes.ts'
import { createAuthService, requestMeta } from '../auth/service.ts'
import { errorResponses } from '../common.ts'
import { AuthenticationOptionsSchema, AuthenticationResponseSchema } from '../mfa/schemas.ts'
import { createMfaService } from '../mfa/service.ts'
import { createUserRepository } from '../user/repository.ts'
import { type PasskeyActions, consentPage, messagePage, pageCsp, secondFactorPage, signInPage } from './pages.ts'
import { passkeyScriptRoute } from './passkey-script.ts'
import { INTERACTION_PREFIX, OAUTH_ROUTES, createProvider } from './provider.ts'
import { createOAuthClientRepository } from './repository.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The OAuth 2.0 / OpenID Connect server (oidc-provider), for the routes that work beside it. */
    oauthProvider: Provider
  }
}

const UidParamsSchema = Type.Object(
  { uid: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) },
  { additionalProperties: false },
)
const FormField = Type.String({ maxLength: 1024 })
const SignInBodySchema = Type.Object(
  { csrf: FormField, email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false },
)
const CodeBodySchema = Type.Object(
  { csrf: FormField, code: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
)
const ConsentBodySchema = Type.Object(
  { csrf: FormField, scope: Type.Optional(Type.Union([FormField, Type.Array(FormField, { maxItems: 32 })])) },
  { additionalProperties: false },
)
const CsrfBodySchema = Type.Object({ csrf: FormField }, { additionalProperties: false })
const PasskeyBodySchema = Type.Object(
  {
    csrf: FormField,
    /** The assertion of navigator.credentials.get(), as WebAuthn's toJSON() (JSON text; the page's script writes it). */
    assertion: Type.String({ maxLength: 12_000 }),
  },
  { additionalProperties: false },
)
const HtmlSchema = Type.String({ description: 'An HTML page' })

/** The pending password step of an account with a second factor, kept in the interaction (5 minutes). */
interface PendingMfa {
  accountId: string
  at: number
}

/**
 * What an interaction keeps between its pages: the password step waiting for a second factor, and the
 * WebAuthn challenge last handed to this interaction's page (its assertion must answer that one).
 */
interface InteractionState {
  pendingMfa?: PendingMfa
  passkeyChallenge?: string
}

const PENDING_MFA_MS = 300_000

/**
 * The OAuth 2.0 authorization server for third-party apps (integrators): oidc-provider mounted under
 * PUBLIC_URL (its endpoints in OAUTH_ROUTES, discovery under /.well-known/), and the pages it sends the
 * user to — sign-in, second factor, consent — as Fastify routes.
 */
const oauthRoutes: FastifyPluginAsyncTypebox = async function oauthRoutes(app) {
  const { provider, keys, issuer } = createProvider(app)
  app.decorate('oauthProvider', provider)
  const callback = provider.callback()
  const issuerUrl = new URL(issuer)
  const auth = createAuthService(app)
  const mfa = createMfaService(app)
  const users = createUserRepository(app.db)
  passkeyScriptRoute(app)

  // The docs page's own public client: Swagger UI's "Authorize" (code + PKCE) at PUBLIC_URL/docs.
  await createOAuthClientRepository(app.db).ensureDocsClient(
    DOCS_CLIENT_ID,
    `${issuer}/docs/static/oauth2-redirect.html`,
    Object.keys(OAUTH_SCOPES).filter((s) => s !== 'offline_access'),
  )

  /**
   * Hands the request to the library as it came (the body unread): the scheme and host are the
   * issuer's, so every URL it writes is under PUBLIC_URL; the pages it renders get the pages' CSP.
   */
  function mount(url?: string) {
    return function handOver(request: FastifyRequest, reply: FastifyReply) {
      reply.hijack()
      const req = request.raw as IncomingMessage
      const res = reply.raw as ServerResponse
      if (url) req.url = url
      req.headers['x-forwarded-proto'] = issuerUrl.protocol.slice(0, -1)
      req.headers['x-forwarded-host'] = issuerUrl.host
      res.setHeader('content-security-policy', pageCsp())
      res.setHeader('x-content-type-options', 'nosniff')
      res.setHeader('referrer-policy', 'same-origin')
      res.setHeader('x-request-id', request.id)
      if (!res.hasHeader('cache-control')) res.setHeader('cache-control', 'no-store')
      callback(req, res)
    }
  }

  await app.register(async function libraryEndpoints(scope) {
    // The library reads and checks the bodies itself (form or JSON, per endpoint).
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', function leaveBodyUnread(_request, _payload, done) {
      done(null, undefined)
    })
    const hidden = { hide: true }
    for (const path of Object.values(OAUTH_ROUTES)) {
      scope.route({ method: ['GET', 'POST', 'OPTIONS'], url: path, schema: hidden, handler: mount() })
      scope.route({ method: ['GET', 'POST', 'OPTIONS'], url: `${path}/*`, schema: hidden, handler: mount() })
    }
    scope.route({
      method: ['GET', 'OPTIONS'],
      url: '/.well-known/openid-configuration',
      schema: hidden,
      handler: mount(),
    })
    // RFC 8414 metadata: the same document (the library writes OpenID Connect discovery, a superset).
    scope.route({
      method: ['GET', 'OPTIONS'],
      url: '/.well-known/oauth-authorization-server',
      schema: hidden,
      handler: mount('/.well-known/openid-configuration'),
    })
  })

  // Expired codes, tokens, sessions and interactions are useless a day after their end: swept now and then.
  if (app.config.JOBS_ENABLED) {
    const timer = setInterval(() => {
      app.db.execute(sql`delete from oauth_models where expires_at < now() - interval '1 day'`).catch(() => {})
    }, 600_000)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  }

  // ---- the pages of an interaction (sign-in, second factor, consent) ------------------------------------

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    function parseForm(_request, body, done) {
      const form: Record<string, string | string[]> = {}
      for (const [k, v] of new URLSearchParams(body as string)) {
        const had = form[k]
        form[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v]
      }
      done(null, form)
    },
  )

  /**
   * The form token of an interaction: bound to its uid (the interaction cookie binds the uid to the
   * browser). The pages' Referrer-Policy is `same-origin`, so a browser's form post names its Origin
   * (with `no-referrer` it would send `Origin: null`); another origin is refused.
   */
  const csrfOf = (uid: string) => createHmac('sha256', keys.csrf).update(uid).digest('base64url')
  function checkCsrf(request: FastifyRequest, uid: string, given: string) {
    const expected = Buffer.from(csrfOf(uid))
    const actual = Buffer.from(given)
    const origin = request.headers.origin
    const sameOrigin = origin === undefined || origin === issuerUrl.origin
    return sameOrigin && expected.length === actual.length && timingSafeEqual(expected, actual)
  }

  async function details(request: FastifyRequest, reply: FastifyReply, uid: string) {
    try {
      const interaction = await provider.interactionDetails(request.raw, reply.raw)
      return interaction.uid === uid ? interaction : null
    } catch {
      return null
    }
  }

  function page(reply: FastifyReply, html: string, redirectTo?: string, status = 200, script = false) {
    return reply
      .status(status)
      .header('content-security-policy', pageCsp(redirectTo, script))
      .header('referrer-policy', 'same-origin')
      .type('text/html; charset=utf-8')
      .send(html)
  }

  const expired = (reply: FastifyReply) =>
    page(
      reply,
      messagePage(
        'This sign-in has expired',
        'Go back to the app and start connecting again. (Sign-in pages work in the browser that opened them, for an hour.)',
      ),
      undefined,
      400,
    )

  async function clientName(clientId: unknown) {
    const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined
    return client?.clientName ?? 'An app'
  }

  async function finish(
    request: FastifyRequest,
    reply: FastifyReply,
    result: Parameters<Provider['interactionResult']>[2],
  ) {
    const to = await provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: false })
    return reply.redirect(to, 303)
  }

  const stateOf = (interaction: { result?: unknown }) => (interaction.result ?? {}) as InteractionState
  const passkeyActions = (uid: string): PasskeyActions => ({
    action: `${INTERACTION_PREFIX}/${uid}/passkey`,
    optionsAction: `${INTERACTION_PREFIX}/${uid}/passkey/options`,
  })

  /** The sign-in page: e-mail and password, and (with script) a passwordless passkey. */
  function firstStep(
    reply: FastifyReply,
    uid: string,
    clientName: string,
    redirectTo: string | undefined,
    failed?: { error: AppError; email?: string },
  ) {
    return page(
      reply,
      signInPage({
        action: `${INTERACTION_PREFIX}/${uid}/login`,
        csrf: csrfOf(uid),
        clientName,
        email: failed?.email,
        error: failed?.error.message,
        passkey: passkeyActions(uid),
      }),
      redirectTo,
      failed?.error.statusCode ?? 200,
      true,
    )
  }

  /** The second step after the password: a passkey and/or a code, whichever the account has. */
  async function secondStep(
    reply: FastifyReply,
    uid: string,
    accountId: string,
    clientName: string,
    redirectTo: string | undefined,
    failed?: { message: string; status: number },
  ) {
    const factors = await mfa.loginFactors(accountId)
    return page(
      reply,
      secondFactorPage({
        action: `${INTERACTION_PREFIX}/${uid}/code`,
        csrf: csrfOf(uid),
        clientName,
        error: failed?.message,
        code: factors.code || !factors.passkey,
        passkey: factors.passkey ? passkeyActions(uid) : undefined,
      }),
      redirectTo,
      failed?.status ?? 200,
      factors.passkey,
    )
  }

  /** Keeps `state` in the stored interaction (it lives as long as the interaction does). */
  async function saveState(uid: string, state: InteractionState) {
    const stored = await provider.Interaction.find(uid)
    if (!stored) return false
    stored.result = state as never
    await stored.save(Math.max(1, (stored.exp ?? 0) - Math.floor(Date.now() / 1000)))
    return true
  }

  app.get<{ Params: Static<typeof UidParamsSchema> }>(
    `${INTERACTION_PREFIX}/:uid`,
    { schema: { hide: true, params: UidParamsSchema, response: { 200: HtmlSchema, 400: HtmlSchema } } },
    async function interactionPage(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      if (!interaction) return expired(reply)
      const redirectTo = interaction.params.redirect_uri as string | undefined
      const name = await clientName(interaction.params.client_id)
      const csrf = csrfOf(uid)
      if (interaction.prompt.name === 'login') {
        const pending = stateOf(interaction).pendingMfa
        if (pending) return secondStep(reply, uid, pending.accountId, name, redirectTo)
        return firstStep(reply, uid, name, redirectTo)
      }
      const user = interaction.session?.accountId ? await users.findById(interaction.session.accountId) : null
      if (!user) return expired(reply)
      const missing = (interaction.prompt.details.missingOIDCScope as string[] | undefined) ?? []
      const requested = String(interaction.params.scope ?? '').split(' ')
      return page(
        reply,
        consentPage({
          action: `${INTERACTION_PREFIX}/${uid}/consent`,
          abortAction: `${INTERACTION_PREFIX}/${uid}/abort`,
          csrf,
          clientName: name,
          email: user.email,
          scopes: missing.filter((s) => s !== 'openid'),
          alreadyGranted: requested.filter((s) => isOAuthScope(s) && s !== 'openid' && !missing.includes(s)),
          identity: missing.includes('openid'),
        }),
        redirectTo,
      )
    },
  )

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof SignInBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/login`,
    {
      // The per-IP budget of the API's login routes, shared with them.
      config: { rateLimit: { max: 30, timeWindow: 60_000, groupId: 'login' } },
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: SignInBodySchema,
        response: {
          200: HtmlSchema,
          303: Type.Null(),
          400: HtmlSchema,
          401: HtmlSchema,
          403: HtmlSchema,
          429: HtmlSchema,
        },
      },
    },
    async function signIn(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      if (!interaction || interaction.prompt.name !== 'login' || !checkCsrf(request, uid, request.body.csrf)) {
        return expired(reply)
      }
      const redirectTo = interaction.params.redirect_uri as string | undefined
      const name = await clientName(interaction.params.client_id)
      const again = (error: AppError) => {
        noteErrorId(request, error.code)
        if (error.headers?.['retry-after']) reply.header('retry-after', error.headers['retry-after'])
        return firstStep(reply, uid, name, redirectTo, { error, email: request.body.email })
      }
      let user: Awaited<ReturnType<typeof auth.checkCredentials>>
      try {
        user = await auth.checkCredentials(request, request.body, false)
      } catch (err) {
        if (err instanceof AppError) return again(err)
        throw err
      }
      if (await app.mfa.hasFactor(user.id)) {
        // The password was right; the second factor follows on the next page, for this interaction only.
        if (!(await saveState(uid, { pendingMfa: { accountId: user.id, at: Date.now() } }))) return expired(reply)
        return reply.redirect(`${INTERACTION_PREFIX}/${uid}`, 303)
      }
      await auth.history.record({
        userId: user.id,
        email: user.email,
        success: true,
        reason: null,
        ...requestMeta(request),
      })
      return finish(request, reply, { login: { accountId: user.id, amr: ['pwd'] } })
    },
  )

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof CodeBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/code`,
    {
      config: { rateLimit: { max: 30, timeWindow: 60_000, groupId: 'login' } },
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: CodeBodySchema,
        response: { 200: HtmlSchema, 303: Type.Null(), 400: HtmlSchema, 401: HtmlSchema, 429: HtmlSchema },
      },
    },
    async function secondFactor(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      const pending = interaction ? stateOf(interaction).pendingMfa : undefined
      if (
        !interaction ||
        !pending ||
        !checkCsrf(request, uid, request.body.csrf) ||
        Date.now() - pending.at > PENDING_MFA_MS
      ) {
        return expired(reply)
      }
      const redirectTo = interaction.params.redirect_uri as string | undefined
      const user = await users.findById(pending.accountId)
      if (!user || user.disabledAt) return expired(reply)
      const name = await clientName(interaction.params.client_id)
      const retry = (message: string, status: number, code = 'invalid_mfa_code') => {
        noteErrorId(request, code)
        return secondStep(reply, uid, user.id, name, redirectTo, { message, status })
      }
      try {
        if (!(await mfa.checkLoginCode(request, user, request.body.code))) {
          return retry('This code is not right (or was used already).', 401)
        }
      } catch (err) {
        if (err instanceof AppError) {
          if (err.headers?.['retry-after']) reply.header('retry-after', err.headers['retry-after'])
          return retry(err.message, err.statusCode, err.code)
        }
        throw err
      }
      await auth.history.record({
        userId: user.id,
        email: user.email,
        success: true,
        reason: null,
        ...requestMeta(request),
      })
      return finish(request, reply, { login: { accountId: user.id, amr: ['pwd', 'otp'] } })
    },
  )

  /**
   * The passkey of an interaction's sign-in: the second step of an account waiting for it after its
   * password (its own passkeys, purpose `second_factor`), or else a passwordless sign-in (a discoverable
   * credential, purpose `login`). The MFA domain's options, challenge storage and verification; the
   * challenge is also kept in the interaction, so an assertion answers this sign-in's ceremony only.
   */
  function passkeyStep(interaction: { prompt: { name: string }; result?: unknown }) {
    const state = stateOf(interaction)
    if (interaction.prompt.name !== 'login') return null
    if (state.pendingMfa) return Date.now() - state.pendingMfa.at > PENDING_MFA_MS ? null : state
    return state
  }

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof CsrfBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/passkey/options`,
    {
      config: { rateLimit: { max: 30, timeWindow: 60_000, groupId: 'login' } },
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: CsrfBodySchema,
        response: { 200: AuthenticationOptionsSchema, ...errorResponses(400, 429) },
      },
    },
    async function passkeyOptions(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      const state = interaction && passkeyStep(interaction)
      if (!interaction || !state || !checkCsrf(request, uid, request.body.csrf)) {
        throw errors.badRequest('interaction_expired', 'This sign-in has expired; go back to the app and start again.')
      }
      const accountId = state.pendingMfa?.accountId ?? null
      if (accountId && !(await mfa.loginFactors(accountId)).passkey) {
        throw errors.badRequest('no_passkey', 'This account has no passkey; use a code.')
      }
      const options = await mfa.assertionOptions(accountId ? 'second_factor' : 'login', accountId)
      if (!(await saveState(uid, { ...state, passkeyChallenge: options.challenge }))) {
        throw errors.badRequest('interaction_expired', 'This sign-in has expired; go back to the app and start again.')
      }
      return options
    },
  )

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof PasskeyBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/passkey`,
    {
      config: { rateLimit: { max: 30, timeWindow: 60_000, groupId: 'login' } },
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: PasskeyBodySchema,
        response: { 200: HtmlSchema, 303: Type.Null(), 400: HtmlSchema, 401: HtmlSchema, 429: HtmlSchema },
      },
    },
    async function passkeySignIn(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      const state = interaction && passkeyStep(interaction)
      if (!interaction || !state || !checkCsrf(request, uid, request.body.csrf)) return expired(reply)
      const redirectTo = interaction.params.redirect_uri as string | undefined
      const name = await clientName(interaction.params.client_id)
      const pending = state.pendingMfa
      const user = pending ? await users.findById(pending.accountId) : null
      if (pending && (!user || user.disabledAt)) return expired(reply)
      const failed = (error: AppError) => {
        noteErrorId(request, error.code)
        if (error.headers?.['retry-after']) reply.header('retry-after', error.headers['retry-after'])
        return user
          ? secondStep(reply, uid, user.id, name, redirectTo, { message: error.message, status: error.statusCode })
          : firstStep(reply, uid, name, redirectTo, { error })
      }
      // The challenge this page was given, once: a second post of the page needs a new ceremony.
      const bound = state.passkeyChallenge
      if (bound) await saveState(uid, { pendingMfa: pending })
      const response = parseAssertion(request.body.assertion)
      try {
        if (!bound || !response)
          throw errors.unauthorized('passkey_rejected', 'This passkey could not be verified for this account.')
        if (user) {
          const amr = await mfa.checkLoginPasskey(request, user, response, bound)
          await auth.history.record({
            userId: user.id,
            email: user.email,
            success: true,
            reason: null,
            ...requestMeta(request),
          })
          return finish(request, reply, { login: { accountId: user.id, amr: ['pwd', ...amr] } })
        }
        const signedIn = await mfa.passkeyAccount(response, bound)
        await auth.history.record({
          userId: signedIn.user.id,
          email: signedIn.user.email,
          success: true,
          reason: null,
          ...requestMeta(request),
        })
        return finish(request, reply, { login: { accountId: signedIn.user.id, amr: signedIn.amr } })
      } catch (err) {
        if (err instanceof AppError) return failed(err)
        throw err
      }
    },
  )

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof ConsentBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/consent`,
    {
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: ConsentBodySchema,
        response: { 303: Type.Null(), 400: HtmlSchema },
      },
    },
    async function consent(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      if (!interaction || interaction.prompt.name !== 'consent' || !checkCsrf(request, uid, request.body.csrf)) {
        return expired(reply)
      }
      const accountId = interaction.session?.accountId
      const clientId = String(interaction.params.client_id)
      if (!accountId) return expired(reply)
      const given = request.body.scope
      const ticked = new Set(Array.isArray(given) ? given : given ? [given] : [])
      const missing = (interaction.prompt.details.missingOIDCScope as string[] | undefined) ?? []
      const granted = missing.filter((s) => s === 'openid' || ticked.has(s))
      const refused = missing.filter((s) => s !== 'openid' && !ticked.has(s))
      if (granted.filter((s) => s !== 'openid').length === 0 && refused.length > 0 && !interaction.grantId) {
        return finish(request, reply, {
          error: 'access_denied',
          error_description: 'The user allowed none of the scopes.',
        })
      }
      const grant = interaction.grantId
        ? await provider.Grant.find(interaction.grantId)
        : new provider.Grant({ accountId, clientId })
      if (!grant) return expired(reply)
      if (granted.length) grant.addOIDCScope(granted.join(' '))
      if (refused.length) grant.rejectOIDCScope(refused.join(' '))
      const claims = interaction.prompt.details.missingOIDCClaims as string[] | undefined
      if (claims?.length) grant.addOIDCClaims(claims)
      const grantId = await grant.save()
      return finish(request, reply, { consent: { grantId } })
    },
  )

  app.post<{ Params: Static<typeof UidParamsSchema>; Body: Static<typeof CsrfBodySchema> }>(
    `${INTERACTION_PREFIX}/:uid/abort`,
    {
      schema: {
        hide: true,
        params: UidParamsSchema,
        body: CsrfBodySchema,
        response: { 303: Type.Null(), 400: HtmlSchema },
      },
    },
    async function deny(request, reply) {
      const { uid } = request.params
      const interaction = await details(request, reply, uid)
      if (!interaction || !checkCsrf(request, uid, request.body.csrf)) return expired(reply)
      return finish(request, reply, { error: 'access_denied', error_description: 'The user denied the request.' })
    },
  )
}

/** The assertion field of a passkey form: WebAuthn's toJSON() shape, or null. */
function parseAssertion(text: string): AuthenticationResponseJSON | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  return Value.Check(AuthenticationResponseSchema, value) ? (value as unknown as AuthenticationResponseJSON) : null
}

export default oauthRoutes
