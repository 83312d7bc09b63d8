import { stdSerializers } from 'pino'

/*
 * How errors appear in the log. pino's standard serializer copies every enumerable property of an error,
 * and a failed query's error carries the SQL and every parameter (Drizzle's DrizzleQueryError: `query`,
 * `params`, and a message "Failed query: … params: …"; the driver's error: `detail` "Key (email)=(…)",
 * `where`, messages quoting the value). A new account's bcrypt hash, an e-mail address or a journal note
 * would land in the log. A database error is therefore logged by what identifies the failure, never by
 * its data: the SQL state, the constraint, table, column and routine, and a message with quoted values
 * taken out. Other errors keep pino's form, minus the same data-carrying fields.
 * See OWASP ASVS V7.1.1/V7.1.2 (no credentials or sensitive personal data in logs).
 */

const DATA_FIELDS = new Set([
  'query',
  'params',
  'parameters',
  'detail',
  'where',
  'internalQuery',
  'hint',
  // nodemailer: who the message was for
  'envelope',
  'accepted',
  'rejected',
  'rejectedErrors',
  'response',
])

// An SMTP server's refusal quotes the recipient ("550 <someone@example.com> unknown").
const EMAIL = /[^\s<>"'@]+@[^\s<>"'@]+\.[^\s<>"'@]+/g
const withoutAddresses = (text: unknown) => (typeof text === 'string' ? text.replace(EMAIL, '<e-mail>') : text)

interface DbLikeError {
  name?: string
  message?: string
  stack?: string
  code?: unknown
  severity?: unknown
  constraint?: unknown
  table?: unknown
  column?: unknown
  schema?: unknown
  routine?: unknown
  dataType?: unknown
  query?: unknown
  params?: unknown
  cause?: unknown
}

/** "invalid input syntax for type uuid: "x"" → "invalid input syntax for type uuid: "…"". */
export function withoutValues(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
}

/** The frames of a stack without its first line(s), which repeat the message. */
function framesOf(stack: string | undefined): string | undefined {
  if (!stack) return undefined
  const frames = stack.split('\n').filter((l) => /^\s+at /.test(l))
  return frames.length ? frames.join('\n') : undefined
}

/** The driver's error (pg's DatabaseError, PGlite's) under Drizzle's wrapper, if this is a database error. */
function databaseCause(err: DbLikeError): DbLikeError | undefined {
  let e: DbLikeError | undefined = err
  let wrapped = false
  for (let i = 0; i < 6 && e; i++) {
    if (e.name === 'DrizzleQueryError' || 'query' in e || 'params' in e) wrapped = true
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && ('severity' in e || 'routine' in e)) return e
    e = e.cause as DbLikeError | undefined
  }
  return wrapped ? {} : undefined
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined)

export interface SerializedError {
  type: string
  message: string
  stack: string
  [key: string]: unknown
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return stdSerializers.err(err as Error) as unknown as SerializedError
  const e = err as DbLikeError
  const db = databaseCause(e)
  if (db) {
    return {
      type: err.constructor?.name ?? e.name ?? 'Error',
      message: db.message ? `database error: ${withoutValues(db.message)}` : 'database query failed',
      sqlState: str(db.code),
      constraint: str(db.constraint),
      table: str(db.table),
      column: str(db.column),
      schema: str(db.schema),
      routine: str(db.routine),
      stack: framesOf(e.stack) ?? '',
    }
  }
  const out = stdSerializers.err(err) as unknown as SerializedError
  for (const k of Object.keys(out)) if (DATA_FIELDS.has(k)) delete out[k]
  out.message = withoutAddresses(out.message) as string
  out.stack = withoutAddresses(out.stack) as string
  if (e.cause instanceof Error) out.cause = serializeError(e.cause)
  return out
}

/** Serializers for every logger the app builds: `{ err }` and `{ error }` both go through serializeError. */
/**
 * The links in e-mails carry their credential in the URL (`?code=…&email=…`, `/invite/<code>/`); a URL
 * is logged with those values replaced, so no access log holds a working link or an address.
 */
export function redactUrl(url: string): string {
  return url
    .replace(/\/invite\/[^/?#]+/g, '/invite/[redacted]')
    .replace(/([?&](?:code|email|token|verification_code)=)[^&#]*/gi, '$1[redacted]')
}

function serializeRequest(request: {
  method: string
  url: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}) {
  // Something else logged under `req` (not a Fastify request) is left to the redact paths.
  if (typeof request?.url !== 'string' || typeof request.method !== 'string') return request
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  }
}

export const LOG_SERIALIZERS = { err: serializeError, error: serializeError, req: serializeRequest }
