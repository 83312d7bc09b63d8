import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, Type } from '@sinclair/typebox'
import { sql } from 'drizzle-orm'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type Provider from 'oidc-provider'
import { AppError } from '../../plugins/errors.ts'
import { noteErrorId } from '../../plugins/metrics.ts'
import { DOCS_CLIENT_ID, OAUTH_SCOPES, isOAuthScope } from '../../plugins/oauth-scopes.ts'
import { createAuthService, requestMeta } from '../auth/service.ts'
import { createMfaService } from '../mfa/service.ts'
import { createUserRepository } from '../user/repository.ts'
import { consentPage, messagePage, pageCsp, secondFactorPage, signInPage } from './pages.ts'
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
const HtmlSchema = Type.String({ description: 'An HTML page' })

/** The pending password step of an account with a second factor, kept in the interaction (5 minutes). */
interface PendingMfa {
  accountId: string
  at: number
}

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

  function page(reply: FastifyReply, html: string, redirectTo?: string, status = 200) {
    return reply
      .status(status)
      .header('content-security-policy', pageCsp(redirectTo))
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
        const pending = (interaction.result as { pendingMfa?: PendingMfa } | undefined)?.pendingMfa
        if (pending) {
          return page(
            reply,
            secondFactorPage({ action: `${INTERACTION_PREFIX}/${uid}/code`, csrf, clientName: name }),
            redirectTo,
          )
        }
        return page(
          reply,
          signInPage({ action: `${INTERACTION_PREFIX}/${uid}/login`, csrf, clientName: name }),
          redirectTo,
        )
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
        return page(
          reply,
          signInPage({
            action: `${INTERACTION_PREFIX}/${uid}/login`,
            csrf: csrfOf(uid),
            clientName: name,
            email: request.body.email,
            error: error.message,
          }),
          redirectTo,
          error.statusCode,
        )
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
        const stored = await provider.Interaction.find(uid)
        if (!stored) return expired(reply)
        stored.result = { pendingMfa: { accountId: user.id, at: Date.now() } } as never
        await stored.save(Math.max(1, (stored.exp ?? 0) - Math.floor(Date.now() / 1000)))
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
      const pending = (interaction?.result as { pendingMfa?: PendingMfa } | undefined)?.pendingMfa
      if (
        !interaction ||
        !pending ||
        !checkCsrf(request, uid, request.body.csrf) ||
        Date.now() - pending.at > 300_000
      ) {
        return expired(reply)
      }
      const redirectTo = interaction.params.redirect_uri as string | undefined
      const user = await users.findById(pending.accountId)
      if (!user || user.disabledAt) return expired(reply)
      const retry = (message: string, status: number, code = 'invalid_mfa_code') => {
        noteErrorId(request, code)
        return page(
          reply,
          secondFactorPage({
            action: `${INTERACTION_PREFIX}/${uid}/code`,
            csrf: csrfOf(uid),
            clientName: String(interaction.params.client_id),
            error: message,
          }),
          redirectTo,
          status,
        )
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

export default oauthRoutes
