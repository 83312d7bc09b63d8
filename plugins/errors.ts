import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export interface ErrorDetail {
  field: string
  problem: string
}

/** An expected failure: answered as `{ error, message, details? }` with its status. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
    /** Fields the body carries beyond `{ error, message, details }` (e.g. `mfa_token`); the route's schema lists them. */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'AppError'
  }
}

// The error constructors every domain throws. Identifiers are part of the contract (openapi.yaml).
export const errors = {
  validation: (details: ErrorDetail[], message = 'The request is not valid.') =>
    new AppError(400, 'validation_failed', message, details),
  badRequest: (code: string, message: string, details?: ErrorDetail[]) => new AppError(400, code, message, details),
  unauthorized: (code = 'unauthorized', message = 'Authentication is required.') => new AppError(401, code, message),
  forbidden: (message = 'You are not allowed to do this.', code = 'forbidden') => new AppError(403, code, message),
  notFound: (message = 'Not found.', code = 'not_found') => new AppError(404, code, message),
  conflict: (code: string, message: string) => new AppError(409, code, message),
  tooMany: (code: string, message: string, retryAfterSeconds?: number) =>
    new AppError(
      429,
      code,
      message,
      undefined,
      retryAfterSeconds === undefined
        ? undefined
        : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    ),
  unavailable: (code: string, message: string, retryAfterSeconds = 5) =>
    new AppError(503, code, message, undefined, { 'retry-after': String(retryAfterSeconds) }),
}

interface AjvError {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

/** `/samples/3/value` in body → `samples[3].value`; the missing or extra property is named too. */
function fieldOf(e: AjvError, context: string | undefined): string {
  const path = e.instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '')
  const extra = (e.params.missingProperty as string | undefined) ?? (e.params.additionalProperty as string | undefined)
  const field = extra ? (path ? `${path}.${extra}` : extra) : path
  const prefix = context && context !== 'body' ? `${context === 'querystring' ? 'query' : context}.` : ''
  return `${prefix}${field}` || (context ?? 'body')
}

function problemOf(e: AjvError): string {
  if (e.keyword === 'additionalProperties') return 'is not an allowed field'
  if (e.keyword === 'required') return 'is required'
  return e.message ?? 'is invalid'
}

export function validationDetails(validation: AjvError[], context?: string): ErrorDetail[] {
  const seen = new Set<string>()
  const details: ErrorDetail[] = []
  for (const e of validation) {
    // anyOf/union branches repeat themselves; one line per field and problem is enough.
    if (e.keyword === 'anyOf') continue
    const d = { field: fieldOf(e, context), problem: problemOf(e) }
    const k = `${d.field}\u0000${d.problem}`
    if (!seen.has(k)) {
      seen.add(k)
      details.push(d)
    }
  }
  return details
}

/** Details in one answer: enough for every bad sample of a large batch, bounded all the same. */
export const MAX_DETAILS = 1000

// Fastify's own client errors, given stable identifiers of ours.
const FRAMEWORK_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'This content type is not accepted here.'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'The request body is too large.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'The request body is empty but JSON was announced.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'The request body is not valid JSON.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'bad_request', 'Content-Length does not match the body.'],
  FST_ERR_CTP_INVALID_TYPE: [400, 'bad_request', 'The Content-Type header is not valid.'],
  FST_ERR_CTP_INVALID_CHARSET: [415, 'unsupported_media_type', 'This charset is not accepted.'],
  FST_ERR_BAD_URL: [400, 'bad_request', 'The URL is not valid.'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'bad_request', 'The request is not valid.'],
  FST_ERR_JSON_DEPTH: [400, 'invalid_json', 'The JSON body is nested too deeply.'],
  FST_ERR_JWT_NO_AUTHORIZATION_IN_HEADER: [401, 'unauthorized', 'Authentication is required.'],
  FAST_JWT_EXPIRED: [401, 'token_expired', 'The token has expired.'],
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  411: 'length_required',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  429: 'rate_limited',
  431: 'headers_too_large',
  503: 'service_unavailable',
}

/** The driver's error under Drizzle's wrapper (DrizzleQueryError keeps it as `cause`). */
export function rootCause(err: unknown): { code?: string; message?: string } | undefined {
  let e = err as { code?: string; message?: string; cause?: unknown } | undefined
  for (let i = 0; i < 5 && e?.cause; i++) e = e.cause as typeof e
  return e
}

/** Errors the pg driver raises when the server is gone or refuses connections. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = rootCause(err)
  if (!e) return false
  const code = String(e.code ?? '')
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300'].includes(
      code,
    ) ||
    code.startsWith('08') ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection error/i.test(
      e.message ?? '',
    )
  )
}

export function errorBody(error: string, message: string, details?: ErrorDetail[]) {
  return details ? { error, message, details } : { error, message }
}

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    app.setErrorHandler(function handleError(
      err: FastifyError | AppError,
      request: FastifyRequest,
      reply: FastifyReply,
    ) {
      if (err instanceof AppError) {
        if (err.headers) reply.headers(err.headers)
        return reply
          .status(err.statusCode)
          .send(
            err.extra
              ? { ...errorBody(err.code, err.message, err.details), ...err.extra }
              : errorBody(err.code, err.message, err.details),
          )
      }
      const fe = err as FastifyError & { validationContext?: string }
      if (fe.validation) {
        const details = validationDetails(fe.validation as unknown as AjvError[], fe.validationContext)
        const message =
          details.length > MAX_DETAILS
            ? `The request is not valid: ${details.length} problems, the first ${MAX_DETAILS} are listed.`
            : 'The request is not valid.'
        return reply.status(400).send(errorBody('validation_failed', message, details.slice(0, MAX_DETAILS)))
      }
      const known = fe.code ? FRAMEWORK_CODES[fe.code] : undefined
      if (known) return reply.status(known[0]).send(errorBody(known[1], known[2]))
      if (isDatabaseUnavailable(err)) {
        request.log.error({ err }, 'database unavailable')
        reply.header('retry-after', '5')
        return reply
          .status(503)
          .send(errorBody('database_unavailable', 'The service is temporarily unavailable, try again shortly.'))
      }
      const status = fe.statusCode ?? 500
      if (status >= 400 && status < 500) {
        return reply
          .status(status)
          .send(errorBody(STATUS_CODES[status] ?? 'bad_request', fe.message || 'The request is not valid.'))
      }
      // A 500 is a bug: the cause goes to the log, the client gets the request id only.
      request.log.error({ err }, 'unhandled error')
      return reply
        .status(500)
        .send(errorBody('internal_error', `Something went wrong on our side. Request id: ${request.id}`))
    })

    app.setNotFoundHandler(function notFound(request, reply) {
      reply
        .status(404)
        .send(errorBody('not_found', `No route ${request.method} ${request.url.split('?')[0].slice(0, 200)}.`))
    })
  },
  { name: 'errors' },
)
