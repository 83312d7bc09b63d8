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
            'Any route answers `414 uri_too_long` to a URL or path parameter that is too long, and `503 overloaded` (with Retry-After) when the server is saturated.',
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
    await app.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      // Swagger UI sets style attributes from its scripts; only the docs pages allow inline styles.
      transformStaticCSP: (header) =>
        header.replace("style-src 'self' https:", "style-src 'self' https: 'unsafe-inline'"),
    })
  },
  { name: 'swagger' },
)
