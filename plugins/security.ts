import cors from '@fastify/cors'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import sjson from 'secure-json-parse'
import { errorBody } from './errors.ts'

/** JSON nested deeper than this is refused before parsing (ASVS 5.1: bounded input). */
export const MAX_JSON_DEPTH = 64

/**
 * Depth of brackets outside strings, stopping as soon as the limit is passed. A string is skipped with
 * indexOf to its closing quote (one not escaped by an odd run of backslashes): most of a JSON body's
 * characters are in strings, and this runs over every body before it is parsed.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      let end = text.indexOf('"', i + 1)
      for (;;) {
        if (end < 0) return false // an unterminated string holds the rest
        let slashes = 0
        while (text.charCodeAt(end - 1 - slashes) === 92) slashes++
        if (slashes % 2 === 0) break
        end = text.indexOf('"', end + 1)
      }
      i = end
    } else if (c === 123 || c === 91) {
      if (++depth > limit) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

/** The headers helmet (defaults) sets, captured once from a dry run on a stand-in response. */
export function helmetHeaders(): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: string | string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()]
    },
  }
  helmet()({} as never, res as never, () => {})
  return headers
}

/**
 * The headers for a request that came over plain http. Three of helmet's defaults only mean something
 * over https, and one of them breaks plain http:
 * - `upgrade-insecure-requests` makes the browser fetch every sub-resource over https: right behind
 *   TLS, fatal on a plain-http server reached by any name but localhost (the docs page loads blank);
 *   https://www.w3.org/TR/upgrade-insecure-requests/
 * - `Strict-Transport-Security` must not be sent over plain http (RFC 6797 §7.2);
 * - `Cross-Origin-Opener-Policy` is ignored, with a console error, on an untrustworthy origin.
 */
export function plainHttpHeaders(headers: Record<string, string>): Record<string, string> {
  const httpsOnly = new Set(['strict-transport-security', 'cross-origin-opener-policy'])
  const plain = Object.fromEntries(Object.entries(headers).filter(([name]) => !httpsOnly.has(name)))
  const csp = plain['content-security-policy']
  if (csp) {
    plain['content-security-policy'] = csp
      .split(';')
      .filter((d) => d.trim() !== 'upgrade-insecure-requests')
      .join(';')
  }
  return plain
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's Cache-Control when not `no-store` (the default of every answer). */
    cacheControl?: string
  }
}

function clientError(code: string, message: string) {
  return Object.assign(new Error(message), { statusCode: 400, code })
}

/** A JSON body by the rules of every JSON route: not empty, at most MAX_JSON_DEPTH deep, no prototype keys. */
export function parseJsonText(text: string): unknown {
  if (text.length === 0) throw clientError('FST_ERR_CTP_EMPTY_JSON_BODY', 'empty body')
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw clientError('FST_ERR_JSON_DEPTH', 'too deep')
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch {
    throw clientError('FST_ERR_CTP_INVALID_JSON_BODY', 'invalid JSON')
  }
}

export default fp(
  async function securityPlugin(app: FastifyInstance) {
    const { config } = app

    // Security headers: helmet's defaults, computed once at boot and set on every answer (running
    // helmet's dozen middlewares per request cost more than the whole profile read; see BENCHMARKS.md).
    // /docs gets the same policy (Swagger UI needs nothing more than helmet's defaults allow).
    const overHttps = helmetHeaders()
    const overHttp = plainHttpHeaders(overHttps)
    // The request id goes back too, so a client can quote it (5xx bodies carry it as well).
    // Cache-Control: no-store on every answer (ASVS V14.3: tokens and personal data are never kept by a
    // browser, proxy or CDN), unless a route says otherwise in `config.cacheControl` or sets the header
    // itself (firmware images: `private, no-transform`, revalidated by ETag).
    app.addHook('onRequest', function responseHeaders(request, reply, done) {
      // request.protocol is the socket's, or X-Forwarded-Proto's when TRUST_PROXY trusts the proxy.
      reply.headers(request.protocol === 'https' ? overHttps : overHttp)
      reply.header('x-request-id', request.id)
      reply.header('cache-control', request.routeOptions.config?.cacheControl ?? 'no-store')
      done()
    })

    // CORS only for the origins listed in CORS_ORIGINS (comma-separated); none by default.
    const origins = config.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean)
    if (origins.length)
      await app.register(cors, {
        origin: origins,
        methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        allowedHeaders: ['authorization', 'content-type', 'x-auth-token', 'x-request-id', 'range', 'content-encoding'],
        exposedHeaders: ['x-request-id', 'retry-after', 'etag', 'content-range', 'digest'],
        maxAge: 600,
      })

    // A saturated event loop answers 503 at once instead of queueing requests until they time out.
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      // The body is returned, not sent: under-pressure then sends it and the route never runs ("any other
      // return value than a promise or nullish will be sent to the client", its README; its typings say
      // void). A handler that sends and returns nothing lets the route run too, on a reply already sent.
      pressureHandler(_request, reply) {
        reply.status(503).header('retry-after', '5')
        return errorBody('overloaded', 'The server is overloaded; try again shortly.') as unknown as undefined
      },
    })

    // JSON with a depth limit, parsed by secure-json-parse (no prototype poisoning).
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', { parseAs: 'string' }, function parseJson(_request, body, done) {
      let value: unknown
      try {
        value = parseJsonText(body as string)
      } catch (err) {
        return done(err as Error, undefined)
      }
      done(null, value)
    })
  },
  { name: 'security', dependencies: ['config', 'errors'] },
)
