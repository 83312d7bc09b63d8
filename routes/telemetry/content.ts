import type { IncomingMessage } from 'node:http'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, errors } from '../../plugins/errors.ts'
import { type Signal, decodeExportRequest } from './otlp-proto.ts'

const gunzipAsync = promisify(gunzip)

const tooLarge = (max: number) =>
  new AppError(413, 'payload_too_large', `The request body is larger than ${max} bytes (after decompression).`)

/**
 * Reads the body, at most `max` bytes on the wire and at most `max` bytes once gunzipped: a small
 * gzip bomb stops at the cap instead of filling memory (zlib's maxOutputLength).
 */
async function readBody(request: FastifyRequest, payload: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const encoding = String(request.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase()
  if (encoding !== 'identity' && encoding !== 'gzip') {
    throw new AppError(415, 'unsupported_encoding', 'Content-Encoding must be gzip or absent.')
  }
  const declared = Number(request.headers['content-length'])
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max)
  const parts: Buffer[] = []
  let size = 0
  for await (const chunk of payload) {
    size += chunk.length
    if (size > max) throw tooLarge(max)
    parts.push(chunk)
  }
  const raw = Buffer.concat(parts, size)
  if (encoding === 'identity') return raw
  try {
    return await gunzipAsync(raw, { maxOutputLength: max })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(max)
    throw errors.badRequest('invalid_gzip', 'The body is not valid gzip data.')
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which OTLP export request a route takes (for the protobuf decoder). */
    otlpSignal?: Signal
  }
}

/**
 * The OTLP/HTTP content types, for this plugin only (encapsulated): JSON and binary protobuf, both
 * optionally gzip-compressed, both capped at `maxBytes`. Every other content type answers 415.
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
