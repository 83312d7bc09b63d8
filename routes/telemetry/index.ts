import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DbOrTx } from '../../db/client.ts'
import { errors } from '../../plugins/errors.ts'
import { SANITIZED_TEXT } from '../../plugins/input-validation.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { errorResponses } from '../common.ts'
import { registerOtlpParsers, wantsProtobuf } from './content.ts'
import { type Flattened, flattenLogs, flattenMetrics, flattenTraces } from './flatten.ts'
import { type Signal, encodeExportResponse, encodeRpcStatus } from './otlp-proto.ts'
import { type Sender, createTelemetryRepository } from './repository.ts'
import {
  type LogsRequest,
  LogsRequestSchema,
  LogsResponseSchema,
  type MetricsRequest,
  MetricsRequestSchema,
  MetricsResponseSchema,
  type TracesRequest,
  TracesRequestSchema,
  TracesResponseSchema,
} from './schemas.ts'

/** Requests stored at once by one process; past it the exporter is told to back off (OTLP: 503 + Retry-After). */
const MAX_IN_FLIGHT = 16
/** Per sender (user, or client app and IP), per minute, across processes. */
const EXPORTS_PER_MINUTE = 600
const RETENTION_EVERY_MS = 3600_000
const REJECTED_FIELD = { traces: 'rejectedSpans', metrics: 'rejectedDataPoints', logs: 'rejectedLogRecords' } as const

const INGEST_DESCRIPTION = (what: string) =>
  `OTLP/HTTP export of ${what} (https://opentelemetry.io/docs/specs/otlp/#otlphttp): give an OpenTelemetry exporter this URL as its per-signal endpoint (e.g. OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). ` +
  'Body: OTLP/JSON (`application/json`: hex ids, 64-bit integers as strings or numbers, integer enums, unknown fields ignored) ' +
  'or binary protobuf (`application/x-protobuf`), optionally `Content-Encoding: gzip` or `deflate` (else `415 unsupported_encoding`; a broken one is `400 invalid_gzip` / `invalid_deflate`); at most TELEMETRY_MAX_BYTES (default 5 MiB) ' +
  "both compressed and decompressed, else 413. Credentials: a user's Bearer token, a client `x-auth-token`, or both; the rows record " +
  'the user and the client app. Text the database cannot store (U+0000, unpaired surrogates) is stored with NUL removed and surrogates replaced by U+FFFD, not refused. Re-sending an export is harmless (exporters retry): a span already stored under its trace id and span id, and a log record or data point already stored with the same content (every field, times to the millisecond) from the same sender, is not stored again. Records that break the OTLP data model (bad ids, missing times, enums out of range) are rejected one by one: ' +
  "the answer is 200 with `partialSuccess` (count and reasons) and the rest is stored. The answer is in the request's content type: " +
  'a failed protobuf export is answered with a protobuf `google.rpc.Status` whose message is `<error>: <message>`, a JSON one with `{ error, message }`. 429 (`rate_limited`, 600 exports a minute per sender) and 503 (`overloaded`) carry Retry-After.'

const telemetryRoutes: FastifyPluginAsyncTypebox = async function telemetryRoutes(app) {
  const { config, db, limits } = app
  const repo = createTelemetryRepository(db)
  registerOtlpParsers(app, config.TELEMETRY_MAX_BYTES)

  let inFlight = 0
  const counted = new WeakSet<FastifyRequest>()
  function release(request: FastifyRequest) {
    if (counted.delete(request)) inFlight--
  }

  /** A user's bearer token, a client token, or both: each one given must be valid. */
  async function authenticateSender(request: FastifyRequest, reply: FastifyReply) {
    const bearer = request.headers.authorization !== undefined
    const client = request.headers['x-auth-token'] !== undefined
    if (!bearer && !client) {
      throw errors.unauthorized('unauthorized', 'A Bearer access token or an x-auth-token client token is required.')
    }
    if (bearer) await app.authenticate.call(app, request, reply)
    if (client) await app.requireClient.call(app, request, reply)
    const key = bearer ? `user:${request.user.sub}` : `client:${request.clientApp?.id}:${request.ip}`
    await limits.hit(`telemetry:${key}`, EXPORTS_PER_MINUTE, 60)
    if (inFlight >= MAX_IN_FLIGHT) throw errors.unavailable('overloaded', 'Too many exports at once; retry shortly.', 1)
    inFlight++
    counted.add(request)
  }

  const sender = (request: FastifyRequest): Sender => ({
    userId: request.headers.authorization !== undefined ? request.user.sub : null,
    clientId: request.clientApp?.id ?? null,
  })

  function answer<R>(request: FastifyRequest, reply: FastifyReply, signal: Signal, result: Flattened<R>) {
    const body =
      result.rejected > 0 || result.errorMessage
        ? { partialSuccess: { [REJECTED_FIELD[signal]]: result.rejected, errorMessage: result.errorMessage } }
        : {}
    if (wantsProtobuf(request)) {
      return reply.type('application/x-protobuf').send(encodeExportResponse(signal, body))
    }
    return reply.type('application/json').send(body)
  }

  /** OTLP answers a failed protobuf export in protobuf too: a google.rpc.Status with our `error: message`. */
  async function protobufErrors(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const type = String(request.headers['content-type'] ?? '')
    if (reply.statusCode < 400 || !type.startsWith('application/x-protobuf') || typeof payload !== 'string')
      return payload
    let text = payload
    try {
      const body = JSON.parse(payload) as { error?: string; message?: string }
      text = `${body.error}: ${body.message}`
    } catch {}
    reply.type('application/x-protobuf')
    return encodeRpcStatus(reply.statusCode, text)
  }

  const ingest = (signal: Signal, what: string, body: object, response: object) => ({
    onRequest: authenticateSender,
    onSend: protobufErrors,
    onResponse: async (request: FastifyRequest) => release(request),
    onRequestAbort: async (request: FastifyRequest) => release(request),
    config: { otlpSignal: signal },
    schema: {
      tags: ['telemetry'],
      summary: `Export ${what} (OTLP/HTTP)`,
      description: INGEST_DESCRIPTION(what),
      security: [...SECURITY.bearer, ...SECURITY.clientToken],
      // The protobuf body is decoded into the OTLP/JSON shape, so one schema checks both encodings.
      body: {
        content: {
          'application/json': { schema: { ...body, ...SANITIZED_TEXT } },
          'application/x-protobuf': { schema: { ...body, ...SANITIZED_TEXT } },
        },
      },
      response: {
        200: {
          description: 'Stored (with `partialSuccess` when some records were rejected)',
          content: {
            'application/json': { schema: response },
            'application/x-protobuf': {
              schema: Type.String({ format: 'binary', description: 'The same response, protobuf-encoded' }),
            },
          },
        },
        ...errorResponses(400, 401, 413, 415, 429, 503),
      },
    },
  })

  /** One export route per OTLP signal: decode, flatten into rows, store in one transaction, answer. */
  function exportRoute<Req, Row>(
    signal: Signal,
    what: string,
    schemas: { body: object; response: object },
    flatten: (body: Req) => Flattened<Row>,
    insert: (rows: Row[], from: Sender, tx: DbOrTx) => Promise<unknown>,
  ) {
    app.post(
      `/telemetry/${signal}`,
      ingest(signal, what, schemas.body, schemas.response),
      async function exportTelemetry(request, reply) {
        const result = flatten(request.body as Req)
        await db.transaction((tx) => insert(result.rows, sender(request), tx))
        return answer(request, reply, signal, result)
      },
    )
  }

  exportRoute<TracesRequest, Parameters<typeof repo.insertSpans>[0][number]>(
    'traces',
    'spans',
    { body: TracesRequestSchema, response: TracesResponseSchema },
    flattenTraces,
    (rows, from, tx) => repo.insertSpans(rows, from, tx),
  )
  exportRoute<MetricsRequest, Parameters<typeof repo.insertMetricPoints>[0][number]>(
    'metrics',
    'metric data points',
    { body: MetricsRequestSchema, response: MetricsResponseSchema },
    flattenMetrics,
    (rows, from, tx) => repo.insertMetricPoints(rows, from, tx),
  )
  exportRoute<LogsRequest, Parameters<typeof repo.insertLogs>[0][number]>(
    'logs',
    'log records',
    { body: LogsRequestSchema, response: LogsResponseSchema },
    flattenLogs,
    (rows, from, tx) => repo.insertLogs(rows, from, tx),
  )

  if (config.JOBS_ENABLED) {
    let running = false
    const purge = () => {
      if (running) return
      running = true
      repo
        .purgeExpired(config.TELEMETRY_RETENTION_DAYS)
        .then((removed) => removed && app.log.info({ removed }, 'telemetry retention'))
        .catch((err) => app.log.warn({ err }, 'telemetry retention failed'))
        .finally(() => {
          running = false
        })
    }
    const first = setTimeout(purge, 60_000)
    const timer = setInterval(purge, RETENTION_EVERY_MS)
    first.unref()
    timer.unref()
    app.addHook('onClose', async function stopTelemetryRetention() {
      clearTimeout(first)
      clearInterval(timer)
    })
  }
}

export default telemetryRoutes
