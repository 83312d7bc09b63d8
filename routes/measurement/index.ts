import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { driverError } from '../../db/errors.ts'
import { CATALOGUE, type MeasurementType, TYPE_NAMES } from '../../db/schema/measurement-catalogue.ts'
import type { ChangeEntry } from '../../plugins/changes.ts'
import { instantDate, instantMs } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'
import { acceptCompressedJson } from '../../plugins/request-body.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { cursorInstant, decodeCursor, encodeCursor, errorResponses, keysetPage } from '../common.ts'
import { ownerReadRoutes } from '../owner-reads.ts'
import type { ReadRoutesOptions } from '../owner-reads.ts'
import { compactMeasurements } from './compaction.ts'
import { groupCommit } from './group-commit.ts'
import { ensurePartitions, ensurePartitionsAhead, setPartitionCacheHorizon } from './partitions.ts'
import {
  BUCKET_MINUTES,
  type GroupStored,
  type GroupUpload,
  type NewSample,
  createMeasurementRepository,
} from './repository.ts'
import { applyRawRetention, parseRawRetention, partitionHorizon, rawHorizon } from './retention.ts'
import {
  AggregateQuerySchema,
  AggregateResultSchema,
  CatalogueSchema,
  DeleteQuerySchema,
  DeleteResultSchema,
  IngestBodySchema,
  IngestResultSchema,
  ListQuerySchema,
  SamplePageSchema,
} from './schemas.ts'

/** An aggregate answers at most this many buckets (1m buckets: about a week). */
export const MAX_BUCKETS = 10_000
/** Bytes a sample may take in the JSON body, to size the ingest route's body limit. */
const BYTES_PER_SAMPLE = 400

function range(from: string, to: string): { from: Date; to: Date } {
  const f = instantDate(from)
  const t = instantDate(to)
  if (t.getTime() <= f.getTime()) throw errors.validation([{ field: 'query.to', problem: 'must be after from' }])
  return { from: f, to: t }
}

/**
 * The change log's view of an upload: one range per sample type, from its first to its last sample, with
 * the samples of that type the batch carried (the log names the range; the samples stay in their table).
 */
function sampleRanges(samples: NewSample[], action: 'created'): ChangeEntry[] {
  const byType = new Map<string, { from: number; to: number; count: number }>()
  for (const s of samples) {
    const r = byType.get(s.type)
    if (!r) byType.set(s.type, { from: s.at, to: s.at, count: 1 })
    else {
      if (s.at < r.from) r.from = s.at
      if (s.at > r.to) r.to = s.at
      r.count++
    }
  }
  return [...byType].map(([type, r]) => ({
    type: 'measurements' as const,
    action,
    range: { type, from: new Date(r.from), to: new Date(r.to), count: r.count },
  }))
}

function decodeSampleCursor(cursor: string | undefined): { at: Date; deviceId: string } | undefined {
  const v = decodeCursor(cursor, 2)
  if (!v) return undefined
  if (typeof v[1] !== 'string') {
    throw errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
  }
  return { at: cursorInstant(v[0]), deviceId: v[1] }
}

/**
 * The read-only sample routes: the caller's own samples, or (`shared`) a shared owner's; buckets of a
 * day or an hour follow the owner's time zone.
 */
export const measurementReadRoutes = ownerReadRoutes('measurement', async function measurementReadRoutes(app, reads) {
  const repo = createMeasurementRepository(app.db)

  app.get(
    '/measurements',
    reads.route({
      tag: 'measurement',
      summary: 'Raw samples of one type in time order',
      sharedSummary: "A shared owner's raw samples of one type in time order",
      description:
        'Samples with `from` <= timestamp < `to` (both optional), ordered by timestamp then device, ' +
        '`limit` per page (default 1,000, at most 10,000).',
      querystring: ListQuerySchema,
      response: { 200: SamplePageSchema, ...errorResponses(400, 401) },
    }),
    async function listSamples(request) {
      const q = request.query
      const { from, to } =
        q.from && q.to
          ? range(q.from, q.to)
          : { from: q.from ? instantDate(q.from) : undefined, to: q.to ? instantDate(q.to) : undefined }
      const after = decodeSampleCursor(q.cursor)
      const ownerId = await reads.owner(request)
      return keysetPage(
        q,
        (take) => repo.list(ownerId, { type: q.type, from, to, limit: take, after }),
        (row) => row,
        (last) => encodeCursor([last.timestamp, last.device_id ?? '']),
      )
    },
  )

  app.get(
    '/measurements/aggregate',
    reads.route({
      tag: 'measurement',
      summary: 'avg/min/max/count of one type in time buckets',
      sharedSummary: "avg/min/max/count of one type of a shared owner's samples in time buckets",
      description:
        'Buckets over `from` <= timestamp < `to`: `1m`, `5m`, `15m` (aligned with UTC, hence with every zone), ' +
        "`1h` and `1d` in the user's time zone (a DST day is one bucket of 23 or 25 hours; the repeated hour of " +
        `a fall-back is two buckets). Buckets without samples are left out. At most ${MAX_BUCKETS} buckets per ` +
        'request (`400 range_too_large`). `sum` is meaningful for additive types (steps, distance, active_energy).',
      querystring: AggregateQuerySchema,
      response: { 200: AggregateResultSchema, ...errorResponses(400, 401) },
    }),
    async function aggregate(request) {
      const q = request.query
      const { from, to } = range(q.from, q.to)
      const bucket = q.bucket ?? '1h'
      // A day may have 25 hours: count days generously.
      if ((to.getTime() - from.getTime()) / 60_000 / BUCKET_MINUTES[bucket] > MAX_BUCKETS) {
        throw errors.badRequest('range_too_large', `At most ${MAX_BUCKETS} buckets per request; narrow the range.`)
      }
      const ownerId = await reads.owner(request)
      const timeZone = await app.userRepository.timeZone(ownerId)
      const data = await repo.aggregate(ownerId, { type: q.type, from, to, bucket, timeZone })
      return { type: q.type, bucket, time_zone: timeZone, unit: CATALOGUE[q.type].unit, data }
    },
  )
})

/** Samples in one group statement at most (group-commit.ts): a few large uploads, or many live minutes. */
const GROUP_MAX_SAMPLES = 20_000

const measurementRoutes: FastifyPluginAsyncTypebox = async function measurementRoutes(app) {
  const repo = createMeasurementRepository(app.db)
  // PostgreSQL's pool: uploads of different users waiting at the same time go as one statement (PGlite has one
  // connection and the CLI's socket; there each upload is a transaction of its own).
  const { pool } = app.database
  const group =
    app.database.via === 'postgres' && pool && app.config.MEASUREMENT_GROUP_COMMIT > 0
      ? groupCommit<GroupUpload, GroupStored>({
          inFlight: app.config.MEASUREMENT_GROUP_COMMIT,
          maxWeight: GROUP_MAX_SAMPLES,
          weight: (u) => u.samples.length,
          key: (u) => u.userId,
          run: (uploads) => {
            app.metrics.uploadGroupSize.observe(uploads.length)
            return repo.storeGroup(pool, uploads, { prepare: app.config.DATABASE_PREPARED_STATEMENTS })
          },
          // The SQLSTATE only: the error's text and detail may quote a sample or a user id.
          onRefused: (err, uploads) =>
            app.log.warn(
              { code: driverError(err)?.code, uploads },
              'upload group refused by the database: each upload again alone',
            ),
        })
      : undefined
  const batchLimit = app.config.MEASUREMENT_BATCH_LIMIT
  const retention = parseRawRetention(app.config.MEASUREMENT_RAW_RETENTION)
  // Months that retention may drop are looked up in the catalogue on every write, never cached.
  const retained = Object.keys(retention).length > 0
  const horizon = partitionHorizon(retention)
  if (horizon !== null) setPartitionCacheHorizon(horizon + 31 * 86_400_000)
  // A watch's upload over a phone's radio comes compressed (plugins/request-body.ts).
  acceptCompressedJson(app)

  app.post(
    '/measurements',
    {
      onRequest: app.authenticate,
      config: { oauthScope: 'measurements:write' },
      bodyLimit: Math.max(app.config.BODY_LIMIT, batchLimit * BYTES_PER_SAMPLE),
      schema: {
        tags: ['measurement'],
        summary: 'Upload a batch of samples',
        description:
          'Up to MEASUREMENT_BATCH_LIMIT (default 10,000) samples. The batch is all-or-nothing: when any sample is bad ' +
          "(unknown type, value outside the type's range, timestamp before 2000 or more than 24 h ahead, malformed field), " +
          'nothing is stored and `400 validation_failed` lists every problem of every bad sample in one answer, as `samples[i].field` ' +
          'with the reason (format and range problems together; at most 1,000 details, the message gives the total). ' +
          'A sample already stored (same type, timestamp to the millisecond and device) is ignored and counted in ' +
          '`duplicates`, so re-sending a batch after a lost answer is safe, also once its hour has been compacted. ' +
          'Where the operator keeps raw samples of a type only N days (MEASUREMENT_RAW_RETENTION, off by default), a sample older than that is ignored and counted in `duplicates`: it cannot be told from one already counted. ' +
          'Samples without `device_id` share one ' +
          '"no device" series. The body may be compressed (`Content-Encoding: gzip` or `deflate`; another encoding is ' +
          '`415 unsupported_encoding`, a broken one `400 invalid_gzip` / `invalid_deflate`); the size limit (400 bytes a sample ' +
          'of MEASUREMENT_BATCH_LIMIT, at least BODY_LIMIT) holds both on the wire and after decompression, past it `413 payload_too_large`.',
        security: SECURITY.bearer,
        body: IngestBodySchema,
        response: { 200: IngestResultSchema, ...errorResponses(400, 401, 413, 415) },
      },
    },
    async function ingest(request) {
      const { samples, device_id } = request.body
      if (samples.length > batchLimit) {
        throw errors.validation([{ field: 'samples', problem: `must not have more than ${batchLimit} samples` }])
      }
      // Types, timestamps (window included) and value ranges were all checked by the schema, every
      // bad sample reported in one answer (SampleInSchema's x-window and x-ranges).
      const now = Date.now()
      const all: NewSample[] = samples.map((s) => ({ type: s.type, at: instantMs(s.timestamp), value: s.value }))
      // Past its type's raw retention a sample is ignored (retention.ts): it could be one already counted.
      const rows = retained
        ? all.filter((r) => {
            const h = rawHorizon(retention, r.type, now)
            return h === null || r.at >= h
          })
        : all
      // The months' partitions first (DDL on its own, usually a cache hit), then one transaction: the samples, their
      // rollup and the change log, checked against the compacted blocks under the user's lock (repository.ts store).
      await ensurePartitions(
        app.db,
        'measurements',
        rows.map((r) => r.at),
      )
      // Hours that compaction would already move go straight into blocks where they hold nothing yet
      // (direct-blocks.ts); the row path stays for the rest and for any hour that holds samples already.
      const closedBefore = app.config.MEASUREMENT_INGEST_BLOCKS
        ? now - app.config.MEASUREMENT_COMPACTION_DELAY_S * 1000
        : undefined
      if (closedBefore !== undefined) {
        await ensurePartitions(
          app.db,
          'measurement_blocks',
          rows.filter((r) => r.at < closedBefore).map((r) => r.at),
        )
      }
      // The change log entry goes into the upload's own statement, recorded only when a sample was stored.
      const userId = request.user.sub
      const entries = rows.length ? sampleRanges(rows, 'created') : []
      // On PostgreSQL one round trip, often shared with other users' uploads (group); PGlite takes a transaction.
      const result = await repo
        .store(userId, device_id, rows, { group, changes: { entries, recording: app.changes.recording }, closedBefore })
        .catch((err) => {
          // The account was deleted while this upload ran: the rollup's foreign key to the user refused the
          // statement, and nothing of it was stored (db/schema/measurement.ts).
          if (driverError(err)?.code === '23503') throw errors.unauthorized()
          throw err
        })
      result.duplicates += all.length - rows.length
      app.metrics.samplesIngested.inc({ result: 'accepted' }, result.accepted)
      app.metrics.samplesIngested.inc({ result: 'duplicate' }, result.duplicates)
      return result
    },
  )

  app.delete(
    '/measurements',
    {
      onRequest: app.authenticate,
      config: { oauthScope: 'measurements:write' },
      schema: {
        tags: ['measurement'],
        summary: 'Delete my samples in a time range',
        description:
          "Removes the caller's samples with `from` <= timestamp < `to`, of one `type` or of every type when " +
          '`type` is absent. Aggregates and statistics reflect the deletion at once, and every insight computed from ' +
          'samples of that type on those (local) days is withdrawn at once, for the owner and for viewers; the rules ' +
          'compute it again from the remaining data at the next `GET /v1/insights` (it comes back, same id, only if still true). ' +
          '`deleted` counts the samples removed. Where the operator keeps raw samples of a type only N days (MEASUREMENT_RAW_RETENTION, off by default), ' +
          'older days hold only 15-minute aggregates: there a range removes every quarter-hour it touches, whole, and counts their samples.',
        security: SECURITY.bearer,
        querystring: DeleteQuerySchema,
        response: { 200: DeleteResultSchema, ...errorResponses(400, 401) },
      },
    },
    async function deleteRange(request) {
      const { from, to } = range(request.query.from, request.query.to)
      const deleted = await app.db.transaction(async (tx) => {
        const n = await repo.deleteRange(request.user.sub, { type: request.query.type, from, to }, tx)
        if (n > 0) {
          // Insights computed from these samples are withdrawn with them (the `to` instant is exclusive).
          await app.dataChanges.changed(tx, {
            userId: request.user.sub,
            source: `measurement:${request.query.type ?? '*'}`,
            from,
            to: new Date(to.getTime() - 1),
          })
          await app.changes.record(tx, request.user.sub, {
            type: 'measurements',
            action: 'deleted',
            range: { type: request.query.type ?? null, from, to, count: n },
          })
        }
        return n
      })
      return { deleted }
    },
  )

  app.get(
    '/measurements/types',
    {
      onRequest: app.authenticate,
      config: { oauthScope: 'measurements:read' },
      schema: {
        tags: ['measurement'],
        summary: 'The catalogue of measurement types: unit and valid range of each',
        security: SECURITY.bearer,
        response: { 200: CatalogueSchema, ...errorResponses(401) },
      },
    },
    async function catalogue() {
      return {
        data: TYPE_NAMES.map((type) => {
          const t: MeasurementType = CATALOGUE[type]
          return {
            type,
            unit: t.unit,
            min: t.min,
            max: t.max,
            integer: t.integer ?? false,
            additive: t.additive ?? false,
            ...(t.codes ? { codes: t.codes } : {}),
            description: t.description,
          }
        }),
      }
    },
  )

  await app.register(measurementReadRoutes)

  app.addHook('onReady', async function createMeasurementPartitions() {
    await ensurePartitionsAhead(app.db)
  })

  const intervalS = app.config.MEASUREMENT_COMPACTION_INTERVAL_S
  if (app.config.JOBS_ENABLED && intervalS > 0) {
    let running: Promise<void> | undefined
    const compact = () => {
      if (running) return
      running = ensurePartitionsAhead(app.db)
        .then(() =>
          compactMeasurements(app.db, { before: Date.now() - app.config.MEASUREMENT_COMPACTION_DELAY_S * 1000 }),
        )
        .then(async (r) => {
          if (r.samples > 0 || r.skipped > 0) app.log.info(r, 'measurement compaction')
          const expired = await applyRawRetention(app.db, retention)
          if (expired.samples > 0 || expired.droppedPartitions > 0) app.log.info(expired, 'measurement raw retention')
        })
        .catch((err) => app.log.warn({ err }, 'measurement compaction failed'))
        .finally(() => {
          running = undefined
        })
    }
    const timer = setInterval(compact, intervalS * 1000)
    timer.unref()
    app.addHook('onClose', async function stopMeasurementCompaction() {
      clearInterval(timer)
      await running
    })
  }
}

export default measurementRoutes
