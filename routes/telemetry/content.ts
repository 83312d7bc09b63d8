import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, errors } from '../../plugins/errors.ts'
import { readBody } from '../../plugins/request-body.ts'
import { type Signal, decodeExportRequest } from './otlp-proto.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which OTLP export request a route takes (for the protobuf decoder). */
    otlpSignal?: Signal
  }
}

/**
 * The OTLP/HTTP content types, for this plugin only (encapsulated): JSON and binary protobuf, both
 * optionally gzip- or deflate-compressed (plugins/request-body.ts), both capped at `maxBytes`. Every other content type answers 415.
 */
export function registerOtlpParsers(app: FastifyInstance, maxBytes: number) {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()

  app.addContentTypeParser(
    'application/json',
    async function parseOtlpJson(request: FastifyRequest, payload: IncomingMessage) {
      const text = (await readBody(request, payload, maxBytes)).toString('utf8')
      return new Promise((resolve, reject) => {
        // Fastify's own parser: same prototype-poisoning rules as every other JSON route.
        parseJson(request, text, (err, body) => (err ? reject(err) : resolve(body)))
      })
    },
  )

  app.addContentTypeParser(
    'application/x-protobuf',
    async function parseOtlpProtobuf(request: FastifyRequest, payload: IncomingMessage) {
      const bytes = await readBody(request, payload, maxBytes)
      const signal = request.routeOptions.config.otlpSignal
      if (!signal) throw new AppError(415, 'unsupported_media_type', 'This content type is not accepted here.')
      try {
        return decodeExportRequest(signal, bytes)
      } catch {
        throw errors.badRequest('invalid_protobuf', 'The body is not a valid OTLP protobuf export request.')
      }
    },
  )
}

export function wantsProtobuf(request: FastifyRequest): boolean {
  return String(request.headers['content-type'] ?? '').startsWith('application/x-protobuf')
}
