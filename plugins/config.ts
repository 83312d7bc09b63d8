import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import envSchema from 'env-schema'
import fp from 'fastify-plugin'
import { type TrustProxy, parseTrustProxy } from './trust-proxy.ts'

/**
 * Every setting the server reads, validated once at boot (env-schema + ajv).
 * Values are environment variables; tests pass their own record instead of process.env.
 */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** A connection that bypasses PgBouncer, for migrations (and the CLI's); unset = DATABASE_URL. */
  DATABASE_DIRECT_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** Comma-separated streaming replicas of DATABASE_URL's primary, for the reads of routes declared `reads: 'replica'`. */
  DATABASE_REPLICA_URLS: Type.String({
    default: '',
    pattern: '^(postgres(ql)?://[^,]+(,\\s*postgres(ql)?://[^,]+)*)?$',
  }),
  /** A replica further behind the primary than this leaves rotation (its reads go to the primary) until it catches up. */
  REPLICA_MAX_LAG_S: Type.Integer({ minimum: 1, maximum: 3600, default: 10 }),
  /** How often each process checks every replica (reachability and lag). */
  REPLICA_CHECK_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 1000 }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  PG_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
  /**
   * The upload group statement as a named prepared statement (db/pipelined.ts), planned once per connection.
   * false behind a transaction pooler that does not track them (PgBouncer before 1.21 or without
   * max_prepared_statements): it works there too, but a statement missing on the server connection handed over
   * costs a refused attempt first.
   */
  DATABASE_PREPARED_STATEMENTS: Type.Boolean({ default: true }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  APP_URL: Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9+.-]*://', default: 'nowatch://app' }),
  PUBLIC_URL: Type.String({ pattern: '^https?://', default: 'http://localhost:3000' }),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  /** `smtp` (needs SMTP_URL) or `log` (the dev outbox: table + a log line; bodies never logged in production). */
  MAIL_TRANSPORT: Type.Optional(Type.Union([Type.Literal('smtp'), Type.Literal('log')])),
  MAIL_FROM: Type.String({ minLength: 3, default: 'NOWATCH <no-reply@nowatch.local>' }),
  BCRYPT_COST: Type.Integer({ minimum: 4, maximum: 15, default: 12 }),
  ACCESS_TOKEN_TTL_S: Type.Integer({ minimum: 60, maximum: 86400, default: 3600 }),
  REFRESH_TOKEN_TTL_S: Type.Integer({ minimum: 3600, maximum: 31536000, default: 2592000 }),
  /** A just-rotated refresh token presented again this soon gets the same new pair (GoTrue's reuse interval). */
  REFRESH_REUSE_WINDOW_S: Type.Integer({ minimum: 0, maximum: 300, default: 10 }),
  /** After a client secret rotation the previous secret keeps working this long (apps in the stores). */
  CLIENT_SECRET_OVERLAP_S: Type.Integer({ minimum: 0, maximum: 2592000, default: 86400 }),
  MAX_SESSIONS: Type.Integer({ minimum: 1, maximum: 1000, default: 30 }),
  SESSION_LIMIT_POLICY: Type.Union([Type.Literal('reject'), Type.Literal('evict_oldest')], { default: 'reject' }),
  SESSION_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 10000, default: 2000 }),
  EMAIL_VERIFICATION_DEADLINE_DAYS: Type.Number({ minimum: 0, maximum: 365, default: 7 }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 104857600, default: 1048576 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 600000, default: 30000 }),
  CORS_ORIGINS: Type.String({ default: '' }),
  /** true/false, a hop count, or comma-separated proxy addresses/CIDRs (see plugins/trust-proxy.ts). */
  TRUST_PROXY: Type.String({ default: 'false', maxLength: 4096 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 1000 }),
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true }),
  /** Requests per window that one third-party (OAuth) app may make on the data routes, all its users together. */
  OAUTH_CLIENT_RATE_LIMIT: Type.Integer({ minimum: 1, maximum: 1000000, default: 1200 }),
  OAUTH_CLIENT_RATE_WINDOW_S: Type.Integer({ minimum: 1, maximum: 86400, default: 60 }),
  MEASUREMENT_BATCH_LIMIT: Type.Integer({ minimum: 1, maximum: 100000, default: 10000 }),
  /** Every this many seconds the server compacts closed hours of raw samples into blocks; 0 = never (CLI only). */
  MEASUREMENT_COMPACTION_INTERVAL_S: Type.Integer({ minimum: 0, maximum: 86400, default: 900 }),
  /** An hour is compacted once it ended this long ago (most late uploads arrive before; later ones merge in). */
  MEASUREMENT_COMPACTION_DELAY_S: Type.Integer({ minimum: 0, maximum: 604800, default: 3600 }),
  /** An upload's samples of hours that ended MEASUREMENT_COMPACTION_DELAY_S ago go straight into blocks (where the hour holds nothing yet). */
  MEASUREMENT_INGEST_BLOCKS: Type.Boolean({ default: true }),
  /**
   * PostgreSQL: upload statements running at once per process; uploads arriving meanwhile wait and go as one
   * statement of several users (measurement/group-commit.ts). 0 = every upload a statement of its own.
   */
  MEASUREMENT_GROUP_COMMIT: Type.Integer({ minimum: 0, maximum: 1000, default: 1 }),
  /** Per-type raw retention in days, e.g. `heart_rate=30,hrv_rmssd=90` or `*=365`; past it only the 15-minute rollup stays. '' = keep raw forever. */
  MEASUREMENT_RAW_RETENTION: Type.String({
    default: '',
    maxLength: 2000,
    pattern: '^([a-z_0-9*]+=[0-9]+(,[a-z_0-9*]+=[0-9]+)*)?$',
  }),
  SHARE_INVITE_TTL_DAYS: Type.Integer({ minimum: 1, maximum: 365, default: 14 }),
  FIRMWARE_DIR: Type.Optional(Type.String({ minLength: 1 })),
  FIRMWARE_MAX_BYTES: Type.Integer({ minimum: 1, default: 268435456 }),
  /** A published rollout halts itself when more than this share of its reporting users report a failure… */
  FIRMWARE_HALT_FAILURE_RATE: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
  /** …once at least this many users have reported (so two early failures do not stop a rollout). */
  FIRMWARE_HALT_MIN_REPORTS: Type.Integer({ minimum: 1, maximum: 1000000, default: 20 }),
  TELEMETRY_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  TELEMETRY_MAX_BYTES: Type.Integer({ minimum: 1024, default: 5242880 }),
  JOBS_ENABLED: Type.Boolean({ default: true }),
  /** Change log entries (GET /v1/sync) are kept this long; an older cursor answers 410 cursor_expired. */
  CHANGE_LOG_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  /** Development only (refused in production): webhooks may go to http:// and to private/loopback addresses. */
  WEBHOOK_ALLOW_PRIVATE_TARGETS: Type.Boolean({ default: false }),
  /** A webhook attempt that has no answer after this long fails (and is retried). */
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 10000 }),
  /** Webhook messages in flight at once per subscription, across every process. */
  WEBHOOK_MAX_IN_FLIGHT: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
  /** Admin logins need a second factor; unset = true when NODE_ENV=production, false otherwise. */
  ADMIN_MFA_REQUIRED: Type.Optional(Type.Boolean()),
  /** Sensitive actions need an authentication (login or re-authentication) at most this old. */
  REAUTH_WINDOW_S: Type.Integer({ minimum: 30, maximum: 86400, default: 600 }),
  /** Key material for TOTP secrets at rest; unset = derived from JWT_SECRET with HKDF-SHA256. */
  MFA_ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 32 })),
  /** WebAuthn relying party: ID (a registrable domain; default PUBLIC_URL's host), name, allowed origins. */
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  WEBAUTHN_RP_NAME: Type.String({ minLength: 1, maxLength: 64, default: 'NOWATCH' }),
  /** Comma-separated origins where passkey ceremonies may run; default PUBLIC_URL's origin. */
  WEBAUTHN_ORIGINS: Type.String({ default: '' }),
  /** Bearer token that unlocks GET /metrics (Prometheus); unset = no metrics served. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  /** The standard OpenTelemetry exporter variables: set one to trace the server itself (OTLP/HTTP). */
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'nowatch-api' }),
})

export type Config = Omit<Static<typeof ConfigSchema>, 'TRUST_PROXY'> & {
  JWT_SECRET: string
  TRUST_PROXY: TrustProxy
  ADMIN_MFA_REQUIRED: boolean
  WEBAUTHN_RP_ID: string
  /** Parsed from the comma-separated WEBAUTHN_ORIGINS (or PUBLIC_URL's origin). */
  webauthnOrigins: string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Validates an environment record; every problem is named, one per line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const data = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  // A renamed setting is refused by name rather than silently ignored.
  if (data.REFRESH_REUSE_GRACE_S !== undefined) {
    throw new ConfigError(
      'Invalid configuration:\n  REFRESH_REUSE_GRACE_S was renamed REFRESH_REUSE_WINDOW_S (seconds, default 10)',
    )
  }
  let parsed: Static<typeof ConfigSchema>
  try {
    parsed = envSchema<Static<typeof ConfigSchema>>({
      schema: ConfigSchema,
      data,
      env: false,
      dotenv: false,
      ajv: {
        customOptions(ajv) {
          ajv.opts.allErrors = true
          return ajv
        },
      },
    })
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n${describeEnvErrors(err)}`)
  }
  if (parsed.NODE_ENV === 'production') {
    const missing = ['JWT_SECRET', 'DATABASE_URL'].filter((k) => !parsed[k as keyof typeof parsed])
    const problems = missing.map((k) => `  ${k} is required when NODE_ENV=production`)
    // Production never falls back to the dev outbox silently: SMTP, or the log chosen on purpose.
    if (!parsed.SMTP_URL && parsed.MAIL_TRANSPORT !== 'log') {
      problems.push(
        '  SMTP_URL is required when NODE_ENV=production (or set MAIL_TRANSPORT=log to keep mail in the outbox table and log)',
      )
    }
    if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`)
  }
  if (parsed.DATABASE_REPLICA_URLS && !parsed.DATABASE_URL) {
    throw new ConfigError(
      'Invalid configuration:\n  DATABASE_REPLICA_URLS needs DATABASE_URL (the primary they replicate)',
    )
  }
  if (parsed.NODE_ENV === 'production' && parsed.WEBHOOK_ALLOW_PRIVATE_TARGETS) {
    throw new ConfigError(
      'Invalid configuration:\n  WEBHOOK_ALLOW_PRIVATE_TARGETS=true is for development only and refused when NODE_ENV=production',
    )
  }
  if (parsed.MAIL_TRANSPORT === 'smtp' && !parsed.SMTP_URL) {
    throw new ConfigError('Invalid configuration:\n  SMTP_URL is required when MAIL_TRANSPORT=smtp')
  }
  let trustProxy: TrustProxy
  try {
    trustProxy = parseTrustProxy(parsed.TRUST_PROXY)
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  TRUST_PROXY: ${(err as Error).message}`)
  }
  const jwtSecret = parsed.JWT_SECRET ?? developmentSecret(parsed.DATA_DIR)
  const publicUrl = new URL(parsed.PUBLIC_URL)
  const origins = parsed.WEBAUTHN_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  const badOrigin = origins.find((o) => !/^https?:\/\/[^/]+$/.test(o))
  if (badOrigin) {
    throw new ConfigError(
      `Invalid configuration:\n  WEBAUTHN_ORIGINS: "${badOrigin}" is not an origin (scheme://host[:port])`,
    )
  }
  return {
    ...parsed,
    JWT_SECRET: jwtSecret,
    TRUST_PROXY: trustProxy,
    ADMIN_MFA_REQUIRED: parsed.ADMIN_MFA_REQUIRED ?? parsed.NODE_ENV === 'production',
    WEBAUTHN_RP_ID: parsed.WEBAUTHN_RP_ID ?? publicUrl.hostname,
    webauthnOrigins: origins.length > 0 ? origins : [publicUrl.origin],
  }
}

/** The allowed values of a setting that is a list of literals (NODE_ENV, LOG_LEVEL …). */
function allowedValues(name: string): string[] | null {
  const prop = (ConfigSchema.properties as Record<string, { anyOf?: Array<{ const?: unknown }> }>)[name]
  const values = prop?.anyOf?.map((s) => s.const)
  return values?.every((v) => typeof v === 'string') ? (values as string[]) : null
}

function describeEnvErrors(err: unknown): string {
  const errors = (
    err as { errors?: Array<{ instancePath: string; keyword?: string; message?: string; params?: unknown }> }
  ).errors
  if (!errors?.length) return `  ${(err as Error).message}`
  const lines: string[] = []
  for (const e of errors) {
    const name =
      e.instancePath.replace(/^\//, '') || String((e.params as { missingProperty?: string })?.missingProperty ?? '')
    const allowed = allowedValues(name)
    // One line per setting that must be one of a list, naming the list (not four "must be equal to constant").
    const line = allowed
      ? `  ${name}: must be one of ${allowed.join(', ')}`
      : `  ${name || 'environment'}: ${e.message ?? 'is invalid'}`
    if (!lines.includes(line)) lines.push(line)
  }
  return lines.join('\n')
}

/**
 * Outside production a signing secret is generated on first boot and kept in DATA_DIR,
 * so tokens survive restarts without anyone having to invent a secret.
 */
function developmentSecret(dataDir: string): string {
  const dir = resolve(dataDir)
  const file = join(dir, '.jwt-secret')
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    mkdirSync(dir, { recursive: true })
    const secret = randomBytes(48).toString('base64url')
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
    return secret
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Decorates the validated config; buildApp loads it (or takes the tests' own). */
export const configPlugin = fp<{ config: Config }>(
  async function configPlugin(app, opts) {
    app.decorate('config', opts.config)
  },
  { name: 'config' },
)
