import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyServerOptions } from 'fastify'
import type { Database } from './db/client.ts'
import afterAnswerPlugin from './plugins/after-answer.ts'
import auditPlugin from './plugins/audit.ts'
import authPlugin from './plugins/auth.ts'
import changesPlugin from './plugins/changes.ts'
import clientTokenPlugin from './plugins/client-token.ts'
import { type Config, configPlugin, loadConfig } from './plugins/config.ts'
import dataChangesPlugin from './plugins/data-changes.ts'
import dbPlugin from './plugins/db.ts'
import errorsPlugin from './plugins/errors.ts'
import { makeValidatorCompiler } from './plugins/input-validation.ts'
import limitsPlugin from './plugins/limits.ts'
import { LOG_SERIALIZERS } from './plugins/log-serializers.ts'
import mailerPlugin from './plugins/mailer.ts'
import metricsPlugin from './plugins/metrics.ts'
import oauthBearerPlugin from './plugins/oauth-bearer.ts'
import readRoutingPlugin from './plugins/read-routing.ts'
import securityPlugin from './plugins/security.ts'
import swaggerPlugin from './plugins/swagger.ts'
import { currentTracing } from './plugins/tracing.ts'
import trustProxyPlugin, { fastifyTrustProxy } from './plugins/trust-proxy.ts'
import accountRoutes from './routes/account/index.ts'
import activityRoutes, { activityReadRoutes } from './routes/activity/index.ts'
import adminFirmwareRoutes from './routes/admin/firmware.ts'
import adminRoutes from './routes/admin/index.ts'
import adminTelemetryRoutes from './routes/admin/telemetry.ts'
import emailChangePlugin from './routes/auth/email-change.ts'
import authRoutes from './routes/auth/index.ts'
import sessionRepositoryPlugin from './routes/auth/session-repository.ts'
import sessionRoutes from './routes/auth/sessions.ts'
import checkinRoutes, { checkinReadRoutes } from './routes/checkin/index.ts'
import clientRepositoryPlugin from './routes/clients/repository.ts'
import dayFeedbackRoutes, { dayFeedbackReadRoutes } from './routes/day-feedback/index.ts'
import firmwareRoutes from './routes/firmware/index.ts'
import insightRoutes, { insightReadRoutes } from './routes/insight/index.ts'
import intentionRoutes, { intentionReadRoutes } from './routes/intention/index.ts'
import measurementRoutes, { measurementReadRoutes } from './routes/measurement/index.ts'
import mfaGate from './routes/mfa/gate.ts'
import mfaRoutes from './routes/mfa/index.ts'
import oauthClientAdminRoutes from './routes/oauth/admin.ts'
import authorizationRoutes from './routes/oauth/authorizations.ts'
import oauthRoutes from './routes/oauth/index.ts'
import ownerReadsPlugin from './routes/owner-reads.ts'
import shareAccessPlugin from './routes/sharing/access.ts'
import groupRoutes from './routes/sharing/groups.ts'
import sharingRoutes from './routes/sharing/index.ts'
import sharedRoutes from './routes/sharing/viewer.ts'
import sleepRoutes from './routes/sleep/index.ts'
import statisticsRoutes from './routes/statistics/index.ts'
import syncRoutes from './routes/sync/index.ts'
import systemRoutes from './routes/system/index.ts'
import telemetryRoutes from './routes/telemetry/index.ts'
import userRoutes from './routes/user/index.ts'
import profileCachePlugin from './routes/user/profile-cache.ts'
import userRepositoryPlugin from './routes/user/repository.ts'
import webhookRoutes, { adminOAuthWebhookRoutes, adminWebhookRoutes } from './routes/webhooks/index.ts'
import webhookOutboxPlugin from './routes/webhooks/outbox.ts'

export interface BuildAppOptions {
  /** A validated config; when absent it is loaded from `env` (default process.env). */
  config?: Config
  env?: Record<string, string | undefined>
  /** An open database owned by the caller (tests, CLI). Otherwise the app opens and closes its own. */
  database?: Database
  /** Pino options, or false to log nothing. */
  logger?: FastifyServerOptions['logger']
  /** The clock of TOTP time steps (ms since the epoch); tests pass their own. */
  clock?: () => number
}

// Never in a log line: credentials, tokens and one-time codes.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.password_old',
  '*.password_new',
  '*.new_password',
  '*.verification_code',
  '*.code',
  '*.access',
  '*.refresh',
  '*.secret',
  '*.client_secret',
  '*.x_auth_token',
  '*.token',
  '*.mfa_token',
  '*.recovery_codes',
  '*.otpauth_uri',
]

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/

/** The caller's logger options (or ours), always with the serializers that keep query data out of the log. */
function loggerOptions(given: BuildAppOptions['logger'], level: string): FastifyServerOptions['logger'] {
  if (given === false) return false
  const base =
    given && typeof given === 'object' ? given : { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }
  return { ...base, serializers: { ...LOG_SERIALIZERS, ...base.serializers } }
}

export async function buildApp(options: BuildAppOptions = {}) {
  const config = options.config ?? loadConfig(options.env ?? process.env)
  const app = Fastify({
    logger: loggerOptions(options.logger, config.LOG_LEVEL),
    // Accept a caller's request id only when it is a harmless token; otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    bodyLimit: config.BODY_LIMIT,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    trustProxy: fastifyTrustProxy(config.TRUST_PROXY),
  }).withTypeProvider<TypeBoxTypeProvider>()

  // JSON bodies are validated strictly (42 is not "42"); query strings, params and headers are text
  // and are coerced. Unknown fields are refused, never silently dropped; every problem is reported;
  // text PostgreSQL cannot store and dates outside their window are refused (plugins/input-validation.ts).
  app.setValidatorCompiler(makeValidatorCompiler())

  // Traces (when server.ts started them from OTEL_* variables): registered first, so every route is covered.
  const tracing = currentTracing()
  if (tracing) await app.register(tracing.fastifyPlugin)

  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(trustProxyPlugin)
  await app.register(securityPlugin)
  await app.register(dbPlugin, { database: options.database })
  await app.register(metricsPlugin)
  await app.register(readRoutingPlugin)
  await app.register(swaggerPlugin)
  // The repositories that plugins need are named decorators: the plugins list them in `dependencies`.
  await app.register(userRepositoryPlugin)
  await app.register(sessionRepositoryPlugin)
  await app.register(clientRepositoryPlugin)
  await app.register(profileCachePlugin)
  await app.register(clientTokenPlugin)
  await app.register(oauthBearerPlugin)
  await app.register(authPlugin)
  await app.register(limitsPlugin)
  await app.register(mailerPlugin)
  await app.register(afterAnswerPlugin)
  await app.register(auditPlugin)
  // What auth, user and sharing ask of MFA (login gate, step-up), as decorators.
  await app.register(mfaGate, { now: options.clock })
  await app.register(dataChangesPlugin)
  // The change log (GET /v1/sync) and, listening to it, the webhook outbox.
  await app.register(changesPlugin)
  await app.register(webhookOutboxPlugin)
  await app.register(shareAccessPlugin)
  await app.register(ownerReadsPlugin)

  await app.register(systemRoutes)
  await app.register(oauthRoutes)
  await app.register(authRoutes)
  await app.register(sharingRoutes, { prefix: '/v1' })
  await app.register(sharedRoutes, { prefix: '/v1' })
  await app.register(groupRoutes, { prefix: '/v1' })
  await app.register(measurementRoutes, { prefix: '/v1' })
  await app.register(statisticsRoutes, { prefix: '/v1' })
  await app.register(sleepRoutes, { prefix: '/v1' })
  await app.register(telemetryRoutes, { prefix: '/v1' })
  await app.register(adminTelemetryRoutes, { prefix: '/v1' })
  await app.register(emailChangePlugin)
  await app.register(userRoutes, { prefix: '/v1' })
  await app.register(mfaRoutes, { prefix: '/v1' })
  await app.register(sessionRoutes, { prefix: '/v1' })
  await app.register(authorizationRoutes, { prefix: '/v1' })
  await app.register(accountRoutes, { prefix: '/v1' })
  await app.register(adminRoutes, { prefix: '/v1' })
  await app.register(firmwareRoutes, { prefix: '/v1' })
  await app.register(adminFirmwareRoutes, { prefix: '/v1' })
  await app.register(oauthClientAdminRoutes, { prefix: '/v1' })
  await app.register(checkinRoutes, { prefix: '/v1' })
  await app.register(dayFeedbackRoutes, { prefix: '/v1' })
  await app.register(activityRoutes, { prefix: '/v1' })
  await app.register(intentionRoutes, { prefix: '/v1' })
  await app.register(insightRoutes, { prefix: '/v1' })
  await app.register(syncRoutes, { prefix: '/v1' })
  await app.register(webhookRoutes, { prefix: '/v1' })
  await app.register(adminWebhookRoutes, { prefix: '/v1/admin/clients/:client_id' })
  await app.register(adminOAuthWebhookRoutes, { prefix: '/v1/admin/oauth-clients/:client_id' })
  // Read-only access to the data others share with the caller: each domain's own read routes again
  // under /v1/shared/:owner_id with `shared: true`, so the viewer gets the owner's answer from the same
  // handler and query, after the share and scope check. Only GET routes are registered here: anything
  // else under this prefix is 404, so nothing can be written.
  for (const readRoutes of [
    measurementReadRoutes,
    statisticsRoutes,
    sleepRoutes,
    checkinReadRoutes,
    dayFeedbackReadRoutes,
    activityReadRoutes,
    intentionReadRoutes,
    insightReadRoutes,
  ]) {
    await app.register(readRoutes, { prefix: '/v1/shared/:owner_id', shared: true })
  }

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
