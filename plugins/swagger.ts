import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

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
            'Every `date-time` must be a real instant (no leap second `23:59:60`; any offset; fractions to any precision, stored to the millisecond) and every `date` a real day, accepted between 1900 and 2200 unless the field states a narrower window; outside it the answer is `400 validation_failed` with the window in the problem. A year is never reinterpreted. ' +
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
          },
        },
        tags: TAGS,
      },
    })
    // No CSP of Swagger UI's own: its static one always carries upgrade-insecure-requests, which blanks
    // the page over plain http off localhost. The security plugin's policy (per protocol) covers /docs.
    await app.register(fastifySwaggerUi, { routePrefix: '/docs' })
  },
  { name: 'swagger' },
)
