import type { IncomingMessage } from 'node:http'
import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, errors } from './errors.ts'
import { parseJsonText } from './security.ts'

/*
 * Compressed request bodies (RFC 9110 §8.4: Content-Encoding gzip or deflate) for the upload routes: a
 * watch syncing a day of samples over a phone's radio compresses them, as an OTLP exporter does. The
 * limit holds twice: at most `max` bytes on the wire and at most `max` bytes once inflated, so a small
 * "zip bomb" stops at the cap (zlib's maxOutputLength) instead of filling memory, and answers 413.
 */

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)

const CODECS = {
  gzip: { inflate: gunzipAsync, invalid: ['invalid_gzip', 'The body is not valid gzip data.'] },
  deflate: { inflate: inflateAsync, invalid: ['invalid_deflate', 'The body is not valid deflate (zlib) data.'] },
} as const

const tooLarge = (max: number) =>
  new AppError(413, 'payload_too_large', `The request body is larger than ${max} bytes (after decompression).`)

/** The whole body, inflated when it is gzip or deflate, never more than `max` bytes either way. */
export async function readBody(request: FastifyRequest, payload: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const encoding = String(request.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase()
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'deflate') {
    throw new AppError(415, 'unsupported_encoding', 'Content-Encoding must be gzip, deflate or absent.')
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
  const codec = CODECS[encoding]
  try {
    return await codec.inflate(raw, { maxOutputLength: max })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(max)
    throw errors.badRequest(codec.invalid[0], codec.invalid[1])
  }
}

/**
 * JSON bodies that may come compressed, for the routes of this (encapsulated) plugin: the same parsing
 * rules as every JSON route (plugins/security.ts), the route's `bodyLimit` after decompression.
 */
export function acceptCompressedJson(app: FastifyInstance) {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(
    'application/json',
    async function parseCompressedJson(request: FastifyRequest, payload: IncomingMessage) {
      const body = await readBody(request, payload, request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit)
      return parseJsonText(body.toString('utf8'))
    },
  )
}
