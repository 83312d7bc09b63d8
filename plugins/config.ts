import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import envSchema from 'env-schema'
import fp from 'fastify-plugin'

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
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  PG_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
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
  REFRESH_REUSE_GRACE_S: Type.Integer({ minimum: 0, maximum: 300, default: 0 }),
  MAX_SESSIONS: Type.Integer({ minimum: 1, maximum: 1000, default: 30 }),
  SESSION_LIMIT_POLICY: Type.Union([Type.Literal('reject'), Type.Literal('evict_oldest')], { default: 'reject' }),
  SESSION_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 10000, default: 2000 }),
  EMAIL_VERIFICATION_DEADLINE_DAYS: Type.Number({ minimum: 0, maximum: 365, default: 7 }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 104857600, default: 1048576 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 600000, default: 30000 }),
  CORS_ORIGINS: Type.String({ default: '' }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 1000 }),
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true }),
  MEASUREMENT_BATCH_LIMIT: Type.Integer({ minimum: 1, maximum: 100000, default: 10000 }),
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
  /** Bearer token that unlocks GET /metrics (Prometheus); unset = no metrics served. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 32 })),
  /** The standard OpenTelemetry exporter variables: set one to trace the server itself (OTLP/HTTP). */
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'nowatch-api' }),
})

export type Config = Static<typeof ConfigSchema> & { JWT_SECRET: string }

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Validates an environment record; every problem is named, one per line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const data = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
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
  if (parsed.MAIL_TRANSPORT === 'smtp' && !parsed.SMTP_URL) {
    throw new ConfigError('Invalid configuration:\n  SMTP_URL is required when MAIL_TRANSPORT=smtp')
  }
  const jwtSecret = parsed.JWT_SECRET ?? developmentSecret(parsed.DATA_DIR)
  return { ...parsed, JWT_SECRET: jwtSecret }
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
