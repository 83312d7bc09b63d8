import { createHash } from 'node:crypto'
import { type SQL, and, asc, desc, eq, gt, gte, ilike, lt, sql } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { telemetryLogs, telemetryMetricPoints, telemetrySpans } from '../../db/schema/index.ts'
import { instantDate } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'
import {
  cursorInstant,
  cursorUuid,
  decodeCursor,
  decodeTimeCursor,
  encodeCursor,
  encodeTimeCursor,
  toPage,
} from '../common.ts'
import { type LogRow, type MetricPointRow, SPAN_KIND_NAMES, STATUS_CODE_NAMES, type SpanRow } from './flatten.ts'
import { BUCKETS, type LogsQuery, type MetricSeriesQuery, type SpansQuery } from './schemas.ts'

/** Who sent a batch: the user of the bearer token and/or the client app of the x-auth-token. */
export interface Sender {
  userId: string | null
  clientId: string | null
}

// One multi-row INSERT per chunk: PostgreSQL allows 65,535 parameters a statement, a span row has 19.
const INSERT_CHUNK = 1000

/** JSON with object keys sorted, so that equal content always serializes the same. */
function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value ?? null)
}

/**
 * The identity of a record that has no id of its own: SHA-256 over every field stored (times to the
 * millisecond, as stored) and its sender. Two records equal in all of them are one record sent twice;
 * the store could not tell them apart anyway.
 */
export function contentHash(kind: 'log' | 'point', row: LogRow | MetricPointRow, sender: Sender): string {
  return createHash('sha256')
    .update(`${kind}\n${canonical({ ...row, ...sender })}`)
    .digest('hex')
}

/** Any constant works; every process that purges telemetry must use the same one. */
export const RETENTION_LOCK_ID = 727_274_009

type SpanRecord = typeof telemetrySpans.$inferSelect
type LogRecord = typeof telemetryLogs.$inferSelect
type PointRecord = typeof telemetryMetricPoints.$inferSelect

const origin = (r: SpanRecord | LogRecord | PointRecord) => ({
  service_name: r.serviceName,
  service_version: r.serviceVersion,
  scope_name: r.scopeName,
  user_id: r.userId,
  client_id: r.clientId,
  received_at: r.receivedAt.toISOString(),
})

export function spanOut(r: SpanRecord) {
  return {
    id: r.id,
    trace_id: r.traceId,
    span_id: r.spanId,
    parent_span_id: r.parentSpanId,
    name: r.name,
    kind: SPAN_KIND_NAMES[r.kind],
    start_time: r.startAt.toISOString(),
    end_time: r.endAt.toISOString(),
    duration_ms: r.durationNs / 1e6,
    status_code: STATUS_CODE_NAMES[r.statusCode],
    status_message: r.statusMessage,
    attributes: r.attributes,
    events: r.events ?? [],
    ...origin(r),
  }
}

export function logOut(r: LogRecord) {
  return {
    id: r.id,
    time: r.time.toISOString(),
    severity_number: r.severityNumber,
    severity_text: r.severityText,
    body: r.body,
    attributes: r.attributes,
    trace_id: r.traceId,
    span_id: r.spanId,
    ...origin(r),
  }
}

function pointOut(r: PointRecord) {
  return {
    id: r.id,
    name: r.name,
    unit: r.unit,
    type: r.type,
    time: r.time.toISOString(),
    start_time: r.startTime?.toISOString() ?? null,
    value: r.value,
    count: r.count,
    sum: r.sum,
    min: r.min,
    max: r.max,
    is_monotonic: r.isMonotonic,
    temporality: r.temporality,
    distribution: r.distribution,
    attributes: r.attributes,
    ...origin(r),
  }
}

const badCursor = () => errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])

function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) out.push(rows.slice(i, i + INSERT_CHUNK))
  return out
}

/** The one insert of every signal: multi-row INSERTs of INSERT_CHUNK rows, skipping rows already stored. */
async function insertNew<T extends PgTable>(tx: DbOrTx, table: T, values: Array<T['$inferInsert']>) {
  for (const part of chunks(values)) await tx.insert(table).values(part).onConflictDoNothing()
}

type TimeColumn = typeof telemetrySpans.startAt | typeof telemetryLogs.time
type IdColumn = typeof telemetrySpans.id | typeof telemetryLogs.id

/** Newest first on (time, id): rows strictly after the cursor's row. */
function beforeCursor(time: TimeColumn, id: IdColumn, cursor: string | undefined): SQL | undefined {
  const c = decodeTimeCursor(cursor)
  return keysetAfter(time, id, c)
}

function range(time: TimeColumn, from?: string, to?: string) {
  return [from ? gte(time, instantDate(from)) : undefined, to ? lt(time, instantDate(to)) : undefined]
}

/** The filters both span lists take: service, name, user and start time range. */
function spanFilters(q: SpansQuery) {
  const t = telemetrySpans
  return [
    q.service ? eq(t.serviceName, q.service) : undefined,
    q.name ? eq(t.name, q.name) : undefined,
    q.user_id ? eq(t.userId, q.user_id) : undefined,
    ...range(t.startAt, q.from, q.to),
  ]
}

export function createTelemetryRepository(db: Db) {
  return {
    /** Stores a batch in the caller's transaction, in multi-row INSERTs. */
    // Idempotent (exporters retry): a span already stored under its (trace id, span id), a log record or
    // data point already stored with the same content from the same sender, is skipped.
    async insertSpans(rows: SpanRow[], sender: Sender, tx: DbOrTx) {
      await insertNew(
        tx,
        telemetrySpans,
        rows.map((r) => ({ ...r, ...sender })),
      )
    },
    async insertMetricPoints(rows: MetricPointRow[], sender: Sender, tx: DbOrTx) {
      await insertNew(
        tx,
        telemetryMetricPoints,
        rows.map((r) => ({ ...r, ...sender, contentHash: contentHash('point', r, sender) })),
      )
    },
    async insertLogs(rows: LogRow[], sender: Sender, tx: DbOrTx) {
      await insertNew(
        tx,
        telemetryLogs,
        rows.map((r) => ({ ...r, ...sender, contentHash: contentHash('log', r, sender) })),
      )
    },

    /** One trace, in start order. */
    async trace(traceId: string, limit: number, cursor?: string) {
      const c = decodeTimeCursor(cursor)
      const t = telemetrySpans
      const rows = await db
        .select()
        .from(t)
        .where(and(eq(t.traceId, traceId.toLowerCase()), keysetAfter(t.startAt, t.id, c, 'asc')))
        .orderBy(asc(t.startAt), asc(t.id))
        .limit(limit + 1)
      return toPage(rows, limit, spanOut, (r) => encodeTimeCursor(r.startAt, r.id))
    },

    /** Spans newest first, by service, name, user and start time range. */
    async spans(q: SpansQuery & { limit: number }) {
      const t = telemetrySpans
      const rows = await db
        .select()
        .from(t)
        .where(and(...spanFilters(q), beforeCursor(t.startAt, t.id, q.cursor)))
        .orderBy(desc(t.startAt), desc(t.id))
        .limit(q.limit + 1)
      return toPage(rows, q.limit, spanOut, (r) => encodeTimeCursor(r.startAt, r.id))
    },

    /** Longest spans first, on (duration, id). */
    async slowestSpans(q: SpansQuery & { limit: number }) {
      const t = telemetrySpans
      const v = decodeCursor(q.cursor, 2)
      if (v && !Number.isSafeInteger(v[0])) throw badCursor()
      const after = keysetAfter(t.durationNs, t.id, v ? { at: Number(v[0]), id: cursorUuid(v[1]) } : undefined)
      const rows = await db
        .select()
        .from(t)
        .where(and(...spanFilters(q), after))
        .orderBy(desc(t.durationNs), desc(t.id))
        .limit(q.limit + 1)
      return toPage(rows, q.limit, spanOut, (r) => encodeCursor([r.durationNs, r.id]))
    },

    /** Log records newest first; `q` is a case-insensitive substring of the body. */
    async logs(q: LogsQuery & { limit: number }) {
      const t = telemetryLogs
      const rows = await db
        .select()
        .from(t)
        .where(
          and(
            q.service ? eq(t.serviceName, q.service) : undefined,
            q.min_severity !== undefined ? gte(t.severityNumber, q.min_severity) : undefined,
            q.user_id ? eq(t.userId, q.user_id) : undefined,
            q.trace_id ? eq(t.traceId, q.trace_id.toLowerCase()) : undefined,
            q.q ? ilike(t.body, `%${q.q.replace(/[\\%_]/g, '\\$&')}%`) : undefined,
            ...range(t.time, q.from, q.to),
            beforeCursor(t.time, t.id, q.cursor),
          ),
        )
        .orderBy(desc(t.time), desc(t.id))
        .limit(q.limit + 1)
      return toPage(rows, q.limit, logOut, (r) => encodeTimeCursor(r.time, r.id))
    },

    /** One metric over time in UTC-aligned buckets, oldest bucket first; empty buckets are left out. */
    async metricSeries(q: MetricSeriesQuery & { limit: number; bucket: keyof typeof BUCKETS }) {
      const t = telemetryMetricPoints
      const width = BUCKETS[q.bucket]
      const c = decodeCursor(q.cursor, 1)
      const after = c ? new Date(cursorInstant(c[0]).getTime() + width * 1000) : undefined
      const bucket = sql`date_bin(make_interval(secs => ${width}), ${t.time}, timestamptz '2000-01-01 00:00:00+00')`
      const rows = await queryRows<{
        bucket_start: Date | string
        points: number
        avg: number | null
        min: number | null
        max: number | null
        sum: number | null
      }>(
        db,
        sql`select ${bucket} as bucket_start, count(*)::int as points, avg(${t.value})::float8 as avg,
              min(${t.value})::float8 as min, max(${t.value})::float8 as max, sum(${t.value})::float8 as sum
            from ${t}
            where ${and(
              eq(t.name, q.name),
              q.service ? eq(t.serviceName, q.service) : undefined,
              q.user_id ? eq(t.userId, q.user_id) : undefined,
              gte(t.time, instantDate(q.from)),
              lt(t.time, instantDate(q.to)),
              after ? gte(t.time, after) : undefined,
            )}
            group by 1 order by 1 limit ${q.limit + 1}`,
      )
      const data = rows.map((r) => ({
        bucket_start: new Date(r.bucket_start).toISOString(),
        points: Number(r.points),
        avg: r.avg === null ? null : Number(r.avg),
        min: r.min === null ? null : Number(r.min),
        max: r.max === null ? null : Number(r.max),
        sum: r.sum === null ? null : Number(r.sum),
      }))
      return toPage(
        data,
        q.limit,
        (r) => r,
        (r) => encodeCursor([r.bucket_start]),
      )
    },

    /**
     * Deletes rows stored more than `retentionDays` ago, `batchSize` rows a statement, each batch in its
     * own short transaction holding the retention advisory lock. Answers null when another process
     * holds the lock (it is purging already), else how many rows went.
     */
    async purgeExpired(retentionDays: number, batchSize = 5000, maxBatches = 1000) {
      const removed = { spans: 0, metric_points: 0, logs: 0 }
      // Each batch is found and deleted by the table's primary key (`id` has no index of its own).
      const tables: Array<[keyof typeof removed, PgTable, SQL, PgColumn]> = [
        ['spans', telemetrySpans, sql`${telemetrySpans.traceId}, ${telemetrySpans.spanId}`, telemetrySpans.receivedAt],
        [
          'metric_points',
          telemetryMetricPoints,
          sql`${telemetryMetricPoints.contentHash}`,
          telemetryMetricPoints.receivedAt,
        ],
        ['logs', telemetryLogs, sql`${telemetryLogs.contentHash}`, telemetryLogs.receivedAt],
      ]
      let batches = 0
      for (const [key, t, pk, receivedAt] of tables) {
        while (batches++ < maxBatches) {
          const n = await db.transaction(async (tx) => {
            const [lock] = await queryRows<{ ok: boolean }>(
              tx,
              sql`select pg_try_advisory_xact_lock(${RETENTION_LOCK_ID}) as ok`,
            )
            if (!lock?.ok) return null
            const [res] = await queryRows<{ n: number }>(
              tx,
              sql`with gone as (
                    delete from ${t} where (${pk}) in (
                      select ${pk} from ${t}
                      where ${receivedAt} < now() - make_interval(days => ${retentionDays})
                      limit ${batchSize})
                    returning 1)
                  select count(*)::int as n from gone`,
            )
            return Number(res.n)
          })
          if (n === null) return null
          removed[key] += n
          if (n < batchSize) break
        }
      }
      return removed
    },
  }
}

export type TelemetryRepository = ReturnType<typeof createTelemetryRepository>

/**
 * Account deletion: the user's spans, log records and metric points go with the account, as the foreign keys'
 * cascade did before they were dropped (Citus: these tables are distributed by their own key, not by user; a
 * multi-shard delete by user_id there). Rows without a user (sent with an app token only) stay.
 */
export async function deleteUserTelemetry(tx: DbOrTx, userId: string) {
  await tx.delete(telemetrySpans).where(eq(telemetrySpans.userId, userId))
  await tx.delete(telemetryMetricPoints).where(eq(telemetryMetricPoints.userId, userId))
  await tx.delete(telemetryLogs).where(eq(telemetryLogs.userId, userId))
}

const EXPORT_CHUNK = 500

async function* exportTable<R extends { id: string }>(
  db: Db,
  table: typeof telemetrySpans | typeof telemetryLogs | typeof telemetryMetricPoints,
  userId: string,
  out: (r: R) => Record<string, unknown>,
  recordType: string,
) {
  let last: string | undefined
  for (;;) {
    const rows = (await db
      .select()
      .from(table as typeof telemetrySpans)
      .where(and(eq(table.userId, userId), last ? gt(table.id, last) : undefined))
      .orderBy(asc(table.id))
      .limit(EXPORT_CHUNK)) as unknown as R[]
    for (const r of rows) yield { record_type: recordType, ...out(r) }
    if (rows.length < EXPORT_CHUNK) return
    last = rows[rows.length - 1].id
  }
}

/** The user's telemetry for the account export: spans, metric points and log records, as plain JSON. */
export async function* exportRows(db: Db, userId: string): AsyncGenerator<Record<string, unknown>> {
  yield* exportTable<SpanRecord>(db, telemetrySpans, userId, spanOut, 'telemetry_span')
  yield* exportTable<PointRecord>(db, telemetryMetricPoints, userId, pointOut, 'telemetry_metric_point')
  yield* exportTable<LogRecord>(db, telemetryLogs, userId, logOut, 'telemetry_log')
}
