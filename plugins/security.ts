import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import sjson from 'secure-json-parse'
import { errorBody } from './errors.ts'

/** JSON nested deeper than this is refused before parsing (ASVS 5.1: bounded input). */
export const MAX_JSON_DEPTH = 64

/** Depth of brackets outside strings, stopping as soon as the limit is passed. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

function clientError(code: string, message: string) {
  return Object.assign(new Error(message), { statusCode: 400, code })
}

export default fp(
  async function securityPlugin(app: FastifyInstance) {
    const { config } = app

    // Security headers. The API answers JSON only; Swagger UI sets its own CSP for /docs.
    await app.register(helmet, { global: true })

    // CORS only for the origins listed in CORS_ORIGINS (comma-separated); none by default.
    const origins = config.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean)
    await app.register(cors, {
      origin: origins.length ? origins : false,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-auth-token', 'x-request-id', 'range', 'content-encoding'],
      exposedHeaders: ['x-request-id', 'retry-after', 'etag', 'content-range', 'digest'],
      maxAge: 600,
    })

    // A saturated event loop answers 503 at once instead of queueing requests until they time out.
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      pressureHandler(_request, reply) {
        reply
          .status(503)
          .header('retry-after', '5')
          .send(errorBody('overloaded', 'The server is overloaded; try again shortly.'))
      },
    })

    // JSON with a depth limit, parsed by secure-json-parse (no prototype poisoning).
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', { parseAs: 'string' }, function parseJson(_request, body, done) {
      const text = body as string
      if (text.length === 0) return done(clientError('FST_ERR_CTP_EMPTY_JSON_BODY', 'empty body'), undefined)
      if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) return done(clientError('FST_ERR_JSON_DEPTH', 'too deep'), undefined)
      try {
        done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }))
      } catch {
        done(clientError('FST_ERR_CTP_INVALID_JSON_BODY', 'invalid JSON'), undefined)
      }
    })
  },
  { name: 'security', dependencies: ['config', 'errors'] },
)
