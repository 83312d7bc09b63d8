import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { DOCS_CLIENT_ID, OAUTH_SCOPES } from './oauth-scopes.ts'

/** The domain tags the NOWATCH reference lists (its "Operations" sections), in its order. */
export const REFERENCE_TAGS = [
  'firmware',
  'admin-firmware',
  'measurement',
  'insight',
  'checkin',
  'day-feedback',
  'activity',
  'intention',
  'statistics',
  'sharing',
  'shared',
  'telemetry',
]

/** The tags of the NOWATCH reference, in its order, plus the domains PRODUCT.md adds. */
export const TAGS = [
  { name: 'auth', description: 'Accounts, tokens and sessions (NOWATCH auth contract)' },
  { name: 'user', description: "The caller's own account: profile, settings, sessions, history, export" },
  { name: 'firmware', description: 'Firmware updates and downloads' },
  { name: 'admin-firmware', description: 'Admin firmware management' },
  { name: 'measurement', description: 'Time series health data (heart rate, temperature, activity, etc.)' },
  { name: 'insight', description: 'User insights, feedback, and reflections' },
  { name: 'checkin', description: 'User check-ins and wellness tracking' },
  { name: 'day-feedback', description: 'Daily feedback and mood tracking' },
  { name: 'activity', description: 'Sessions wrapper for activities' },
  { name: 'intention', description: 'Sessions wrapper for intentions' },
  { name: 'statistics', description: 'Aggregated health statistics' },
  { name: 'sleep', description: 'Sleep sessions and daily sleep, derived from sleep-stage samples' },
  { name: 'sharing', description: 'Manage sharing your data with other people' },
  { name: 'shared', description: "Manage other people's data shared with you" },
  { name: 'group', description: 'Peer groups whose members see each other’s data (Beddit reference)' },
  { name: 'telemetry', description: 'Application telemetry data (spans, metrics, logs)' },
  { name: 'mfa', description: 'Second factors (TOTP, recovery codes, passkeys), passwordless login and step-up' },
  { name: 'sync', description: 'The change feed: what changed in my data since a cursor, deletions included' },
  { name: 'webhooks', description: 'Webhook subscriptions (Standard Webhooks): signed, thin events of data changes' },
  { name: 'admin', description: 'Administration: users, client apps, audit log' },
  { name: 'system', description: 'Health and readiness' },
]

export const SECURITY = {
  clientToken: [{ clientToken: [] as string[] }],
  bearer: [{ bearerAuth: [] as string[] }],
}

export default fp(
  async function swaggerPlugin(app) {
    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'NOWATCH API',
          version: '0.9.0',
          description:
            'The NOWATCH API. Errors always answer `{ "error": "<identifier>", "message": "<text>", "details"?: [{ "field", "problem" }] }`. ' +
            'Lists are cursor-paginated: `?limit=&cursor=` → `{ "data": [...], "next_cursor": string|null }`. ' +
            "Times are RFC 3339 in UTC; calendar days are `YYYY-MM-DD` in the user's time zone. " +
            'Any route answers `414 uri_too_long` to a URL or path parameter that is too long, and `503 overloaded` (with Retry-After) when the server is saturated. ' +
            'Every string anywhere in the input (body, query, path, headers, and the content of cursors) is refused with `400 validation_failed` naming the field when it holds U+0000 (NUL) or an unpaired UTF-16 surrogate, which the database cannot store. ' +
            'Every `date-time` must be a real instant (no leap second `23:59:60`, hours 00-23 and minutes 00-59 only; any offset; a fraction of any length, truncated to the millisecond: `.0129999` is 12 ms) and every `date` a real day, accepted between 1900 and 2200 unless the field states a narrower window; outside it the answer is `400 validation_failed` with the window in the problem. A year is never reinterpreted. ' +
            'Every answer carries `Cache-Control: no-store` (tokens and personal data are never cached), except firmware images (`private`).',
        },
        components: {
          securitySchemes: {
            clientToken: {
              type: 'apiKey',
              in: 'header',
              name: 'x-auth-token',
              description: 'Token protecting non-jwt routes. Format: <secret>+<clientId> (base64 encoded)',
            },
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description:
                'Access token from login or refresh. A revoked session is refused at once by the process that revoked it and within SESSION_CACHE_TTL_MS (default 2 s) by every other process.',
            },
            oauth2: {
              type: 'oauth2',
              description:
                'Third-party apps (integrators): OAuth 2.0 (RFC 9700 practice, OpenID Connect on top) with this server as the authorization server; its metadata is at `/.well-known/oauth-authorization-server` (RFC 8414) and `/.well-known/openid-configuration`, the issuer is PUBLIC_URL. Register a client with `POST /v1/admin/oauth-clients` or `npm run cli -- oauth-client create`. ' +
                "Authorization code with PKCE (S256 only, for every client; `state`; redirect URIs matched exactly): the user signs in and consents on this server's pages and may grant a subset of the scopes; a remembered grant skips the consent page unless new scopes are asked. `offline_access` gives a refresh token with the code exchange; every refresh rotates it, and a used refresh token presented again revokes the whole grant. " +
                'Device authorization grant (RFC 8628) for devices without a keyboard: `POST /oauth/device/auth` answers `device_code`, `user_code`, `verification_uri` (`/oauth/device`, where the signed-in user enters the code); poll `POST /oauth/token` with `grant_type=urn:ietf:params:oauth:grant-type:device_code` (HTTP 400 `authorization_pending`, `slow_down`, `access_denied`, `expired_token`). ' +
                'Revocation `POST /oauth/revoke` (RFC 7009), introspection `POST /oauth/introspect` (RFC 7662, confidential clients, their own tokens), userinfo `/oauth/userinfo`. Confidential clients authenticate with HTTP Basic. ' +
                'An access token works on the data routes that list its scope (each route names the scope it needs); elsewhere, or without the scope, the answer is `403 insufficient_scope` with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750). Data routes answer an app\'s requests with `RateLimit-Policy` and `RateLimit` headers (OAUTH_CLIENT_RATE_LIMIT per OAUTH_CLIENT_RATE_WINDOW_S for each app, all its users together), and `429 rate_limited` with Retry-After past them.',
              flows: {
                authorizationCode: {
                  authorizationUrl: '/oauth/authorize',
                  tokenUrl: '/oauth/token',
                  refreshUrl: '/oauth/token',
                  scopes: OAUTH_SCOPES,
                },
              },
              'x-device-authorization': {
                deviceAuthorizationUrl: '/oauth/device/auth',
                verificationUri: '/oauth/device',
                tokenUrl: '/oauth/token',
                grantType: 'urn:ietf:params:oauth:grant-type:device_code',
              },
            } as never,
          },
        },
        tags: TAGS,
      },
    })
    // No CSP of Swagger UI's own: its static one always carries upgrade-insecure-requests, which blanks
    // the page over plain http off localhost. The security plugin's policy (per protocol) covers /docs.
    // "Authorize" on the docs page: authorization code + PKCE against this server, as the docs' own public client.
    await app.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      initOAuth: {
        clientId: DOCS_CLIENT_ID,
        appName: 'NOWATCH API docs',
        usePkceWithAuthorizationCodeGrant: true,
        scopes: ['openid', 'profile:read', 'measurements:read'],
      },
    })
  },
  { name: 'swagger' },
)
