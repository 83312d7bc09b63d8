import { createHash, createPrivateKey, hkdfSync } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider'
import { queryRows } from '../../db/client.ts'
import { OAUTH_SCOPES } from '../../plugins/oauth-scopes.ts'
import { createUserRepository } from '../user/repository.ts'
import { drizzleAdapter } from './adapter.ts'
import { deviceConfirmPage, deviceInputPage, deviceSuccessPage, messagePage } from './pages.ts'
import { createAuthorizationRepository, createOAuthClientRepository } from './repository.ts'

/**
 * oidc-provider 9 prints `Unsupported runtime` to stderr when imported on Node 20 (its supported line is
 * Node 22 LTS and later; it runs on 20.19+). Our stderr carries only start-up failures, so the notice is
 * caught at import and logged once through the app's logger instead.
 */
let runtimeNotice: string | null = null
const { default: Provider, interactionPolicy } = await (async () => {
  const warn = console.warn
  console.warn = (...args: unknown[]) => {
    if (String(args[0]).includes('oidc-provider WARNING: Unsupported runtime')) runtimeNotice = String(args[0])
    else warn(...args)
  }
  try {
    return await import('oidc-provider')
  } finally {
    console.warn = warn
  }
})()

/** Where the library's endpoints live (under PUBLIC_URL, the issuer). */
export const OAUTH_ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  userinfo: '/oauth/userinfo',
  jwks: '/oauth/jwks',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  device_authorization: '/oauth/device/auth',
  code_verification: '/oauth/device',
  end_session: '/oauth/logout',
  pushed_authorization_request: '/oauth/par',
} as const

export const INTERACTION_PREFIX = '/oauth/interaction'

/** Marks an authorization request whose `prompt=consent` this server added (see offlineAccessWithoutPrompt). */
const IMPLIED = 'nowatch_implied_consent'

/**
 * The sign-in and consent policy: the library's, except that a `prompt=consent` this server implied
 * (for `offline_access`) does not force the consent page when the remembered grant already covers it.
 */
function policy() {
  const base = interactionPolicy.base()
  const consent = base.get('consent')
  if (!consent) throw new Error('the consent prompt is missing from the base policy')
  consent.checks.remove('consent_prompt')
  consent.checks.add(
    new interactionPolicy.Check('consent_prompt', 'consent prompt was not resolved', 'consent_required', (ctx) => {
      const { oidc } = ctx
      return oidc.prompts.has('consent') && oidc.params?.[IMPLIED] !== '1' && oidc.promptPending('consent')
    }),
    0,
  )
  return base
}

/**
 * OpenID Connect keeps `offline_access` only with `prompt=consent` (Core §11); this server's integrators
 * get a refresh token from `offline_access` alone (issue 17, as the health-data APIs do). So a GET
 * authorization request with `offline_access` and no `prompt` gets `prompt=consent` added, marked as
 * implied: the consent page is then shown only for what the user has not granted yet.
 */
async function offlineAccessWithoutPrompt(
  ctx: { method: string; path: string; query: Record<string, unknown> },
  next: () => Promise<void>,
) {
  if (ctx.method === 'GET' && ctx.path === OAUTH_ROUTES.authorization) {
    const query = { ...ctx.query }
    const scope = typeof query.scope === 'string' ? query.scope.split(' ') : []
    if (scope.includes('offline_access') && query.prompt === undefined) {
      query.prompt = 'consent'
      query[IMPLIED] = '1'
      ctx.query = query
    }
  }
  await next()
}

/**
 * Keys derived from JWT_SECRET with HKDF (RFC 5869), one per purpose, so every process has the same ones
 * without a key table: the Ed25519 key that signs ID tokens (OpenID Connect) and the keys of the sign-in
 * cookies. Rotating JWT_SECRET rotates them (sign-in sessions end; issued ID tokens stop verifying).
 */
export function oauthKeys(secret: string) {
  const derive = (info: string) =>
    Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'nowatch-oauth', info, 32))
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
  const seed = derive('id-token-ed25519-v1')
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
  const jwk = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' })
  const kid = createHash('sha256').update(String(jwk.x)).digest('base64url').slice(0, 16)
  return {
    signing: { ...jwk, kid, alg: 'EdDSA', use: 'sig' },
    cookies: [derive('cookies-v1').toString('base64url')],
    csrf: derive('interaction-csrf-v1'),
  }
}

/** RFC 8628 §3.2: the polling interval a device is first given (and the default when none is given). */
export const DEVICE_POLL_INTERVAL_S = 5
/** RFC 8628 §3.5: each `slow_down` raises the device code's interval by 5 seconds, for all later polls. */
export const SLOW_DOWN_STEP_S = 5

/**
 * The device grant's polling rules, which the library leaves out: the device authorization answer names
 * its `interval` (RFC 8628 §3.2), and a poll of a pending device code sooner than its interval after the
 * previous poll answers `slow_down` and raises that code's interval by 5 s from then on (§3.5; the
 * library would answer `authorization_pending`). Each device code's interval and last poll are a
 * `DevicePoll` row of oauth_models (kind, device code) that expires with it, so every process agrees.
 */
function devicePolling(app: FastifyInstance) {
  /** Records this poll of `code`; answers whether it came too soon, and the interval from now on. */
  async function poll(code: string): Promise<{ tooSoon: boolean; interval: number }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const [polled] = await queryRows<{ too_soon: boolean; interval: number }>(
        app.db,
        sql`update oauth_models m
               set last_used_at = now(),
                   payload = case when prev.too_soon
                                  then jsonb_build_object('interval', prev.interval + ${SLOW_DOWN_STEP_S}::int)
                                  else m.payload end
              from (select id, (payload->>'interval')::int as interval,
                           last_used_at > now() - make_interval(secs => (payload->>'interval')::int) as too_soon
                      from oauth_models where kind = 'DevicePoll' and id = ${code} for update) prev
             where m.kind = 'DevicePoll' and m.id = prev.id
         returning prev.too_soon, (m.payload->>'interval')::int as interval`,
      )
      if (polled) return { tooSoon: polled.too_soon, interval: polled.interval }
      // The first poll of this code (the interval runs between polls): it starts the row.
      const started = await queryRows<{ id: string }>(
        app.db,
        sql`insert into oauth_models (kind, id, payload, expires_at, last_used_at)
            select 'DevicePoll', id, jsonb_build_object('interval', ${DEVICE_POLL_INTERVAL_S}::int), expires_at, now()
              from oauth_models where kind = 'DeviceCode' and id = ${code}
            on conflict (kind, id) do nothing
            returning id`,
      )
      if (started.length > 0) return { tooSoon: false, interval: DEVICE_POLL_INTERVAL_S }
      // Another process started it at the same moment: this poll is the second one.
    }
    return { tooSoon: true, interval: DEVICE_POLL_INTERVAL_S }
  }

  return async function devicePollingMiddleware(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
    await next()
    if (ctx.path === OAUTH_ROUTES.device_authorization && ctx.status === 200) {
      const body = ctx.body as { device_code?: string; interval?: number } | undefined
      if (body?.device_code) body.interval = DEVICE_POLL_INTERVAL_S
      return
    }
    if (ctx.path !== OAUTH_ROUTES.token || ctx.status !== 400) return
    const body = ctx.body as { error?: string } | undefined
    const code = (ctx.oidc?.params as { device_code?: unknown } | undefined)?.device_code
    if (body?.error !== 'authorization_pending' || typeof code !== 'string') return
    const { tooSoon, interval } = await poll(code)
    if (tooSoon) {
      ctx.body = {
        error: 'slow_down',
        error_description: `polled sooner than the interval; poll at most every ${interval} seconds from now on`,
      }
    }
  }
}

function ttlOf(app: FastifyInstance) {
  const { config } = app
  return {
    AccessToken: config.ACCESS_TOKEN_TTL_S,
    AuthorizationCode: 60,
    DeviceCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: config.REFRESH_TOKEN_TTL_S,
    Session: 14 * 86400,
    Grant: 365 * 86400,
  }
}

/**
 * The OAuth 2.0 / OpenID Connect server: oidc-provider (OpenID Certified), configured for RFC 9700
 * practice: authorization code with PKCE S256 for every client, exact redirect URIs, refresh tokens
 * rotated on every use with reuse detection (a used one revokes the grant), the device grant,
 * revocation, introspection; no implicit flow, no dynamic registration.
 */
export function createProvider(app: FastifyInstance) {
  const { config } = app
  const users = createUserRepository(app.db)
  const clients = createOAuthClientRepository(app.db)
  const authorizations = createAuthorizationRepository(app.db)
  const keys = oauthKeys(config.JWT_SECRET)
  const issuer = new URL(config.PUBLIC_URL).origin

  const configuration: Configuration = {
    adapter: drizzleAdapter(app.db, clients, (tx, grant) => app.webhooks.authorizationRevoked(tx, [grant])),
    clients: [],
    scopes: Object.keys(OAUTH_SCOPES),
    claims: {
      // amr (RFC 8176) says how the user signed in: ["pwd"], ["pwd","otp"], ["pwd","hwk","user"], ["hwk","user"].
      openid: ['sub', 'amr'],
      'profile:read': ['email', 'email_verified', 'given_name', 'family_name', 'zoneinfo'],
    },
    async findAccount(_ctx, sub) {
      const user = await users.findById(sub)
      if (!user || user.disabledAt) return undefined
      return {
        accountId: user.id,
        async claims() {
          return {
            sub: user.id,
            email: user.email,
            email_verified: user.emailVerifiedAt !== null,
            given_name: user.firstName,
            family_name: user.lastName,
            zoneinfo: user.timeZone,
          }
        },
      }
    },
    jwks: { keys: [keys.signing as never] },
    cookies: {
      keys: keys.cookies,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
      names: {
        session: 'nowatch_oauth_session',
        interaction: 'nowatch_oauth_interaction',
        resume: 'nowatch_oauth_resume',
      },
    },
    routes: OAUTH_ROUTES,
    interactions: { url: (_ctx, interaction) => `${INTERACTION_PREFIX}/${interaction.uid}`, policy: policy() },
    extraParams: [IMPLIED],
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      registration: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 for confidential clients, about their own tokens only.
        async allowedPolicy(_ctx, client, token) {
          return client.clientAuthMethod !== 'none' && token.clientId === client.clientId
        },
      },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        deviceInfo: () => ({}),
        async userCodeInputSource(ctx, form, _out, err) {
          let error: string | undefined
          if (err && ((err as { userCode?: string }).userCode || err.name === 'NoCodeError')) {
            error = 'This code is not valid (or has expired). Check it and try again.'
          } else if (err && err.name === 'AbortedError') {
            error = 'The connection was cancelled.'
          } else if (err) {
            error = 'Something went wrong; try again.'
          }
          ctx.type = 'html'
          ctx.body = deviceInputPage(form, error)
        },
        async userCodeConfirmSource(ctx, form, client, _info, userCode) {
          ctx.type = 'html'
          ctx.body = deviceConfirmPage(form, client.clientName ?? client.clientId, userCode)
        },
        async successSource(ctx) {
          const client = (ctx as KoaContextWithOIDC).oidc.client
          ctx.type = 'html'
          ctx.body = deviceSuccessPage(client?.clientName ?? 'The device')
        },
      },
    },
    pkce: { required: () => true },
    enabledJWA: {
      idTokenSigningAlgValues: ['EdDSA'],
      userinfoSigningAlgValues: ['EdDSA'],
      // No client_secret_jwt: the server keeps only a hash of each secret.
      clientAuthSigningAlgValues: ['ES256', 'EdDSA', 'PS256', 'RS256'],
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'EdDSA',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    ttl: ttlOf(app),
    // Every refresh rotates the refresh token; presenting a used one again revokes the whole grant.
    rotateRefreshToken: () => true,
    // A grant outlives the sign-in session of the page: an app keeps access until the user removes it.
    expiresWithSession: async () => false,
    // A remembered grant: the one this user gave this client before, whatever the browser (the consent
    // page then shows only what is new).
    async loadExistingGrant(ctx) {
      const accountId = ctx.oidc.session?.accountId
      const clientId = ctx.oidc.client?.clientId
      const grantId =
        ctx.oidc.result?.consent?.grantId ||
        (clientId ? ctx.oidc.session?.grantIdFor(clientId) : undefined) ||
        (accountId && clientId ? await authorizations.grantIdFor(accountId, clientId) : null)
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined
    },
    async renderError(ctx, out) {
      ctx.type = 'html'
      ctx.body = messagePage(
        'This request cannot go on',
        `${out.error}${out.error_description ? `: ${out.error_description}` : ''}`,
      )
    },
  }

  if (runtimeNotice) app.log.warn({ node: process.version }, runtimeNotice)
  const provider = new Provider(issuer, configuration)
  provider.use(offlineAccessWithoutPrompt as never)
  provider.use(devicePolling(app) as never)
  // Koa would print failures to stderr; they go to our logger, without the request (no tokens in a log line).
  provider.silent = true
  provider.on('server_error', (_ctx: unknown, err: Error) => app.log.error({ err }, 'OAuth server error'))
  // The issuer's scheme and host, not the request's: every URL the library writes is under PUBLIC_URL.
  provider.proxy = true
  // The client table keeps the SHA-256 of each secret: the comparison hashes what the client presents,
  // and after a rotation also accepts the previous secret until its overlap ends (the library awaits it).
  const Client = provider.Client as unknown as {
    prototype: { compareClientSecret(actual: string): Promise<boolean> }
  }
  Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual) {
    return clients.secretMatches(this.clientId, String(actual))
  }
  return { provider, keys, issuer }
}
