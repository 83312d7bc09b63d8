import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'
import { clientApps } from './auth.ts'

/*
 * The apps' own telemetry (OTLP), flattened: one row per span, metric data point and log record.
 * Every row names the resource's service, the user whose bearer token sent it (if any) and the client
 * app whose x-auth-token sent it (if any). Telemetry is personal data of that user too, so it dies
 * with the account: a step of account deletion deletes it (routes/telemetry/repository.ts
 * `deleteUserTelemetry`); `user_id` has no foreign key, since on Citus these tables are distributed by their
 * own key (spans by trace_id, logs and points by content_hash: docs/scaling.md) and may not refer to `users`.
 * A revoked client app only loses the link (client_apps is a reference table).
 * `received_at` drives retention: every row is gone TELEMETRY_RETENTION_DAYS after it was stored,
 * whatever timestamps the sender wrote into it.
 * Exporters retry (OTLP/HTTP: on 429, 502, 503, 504 and lost answers), so ingest is idempotent on the
 * signal's identity: a span is its (trace id, span id), as OpenTelemetry defines it; a log record or
 * a data point has no id, so it is its content: `content_hash`, the SHA-256 of every stored field and
 * its sender (routes/telemetry/repository.ts). A re-sent record is `on conflict do nothing`.
 * Those identities are the primary keys. Rows stored before ingest was idempotent got a hash of their id
 * instead (migration telemetry_content_hash_backfill). `id` stays a random UUID without a key of its own
 * (Citus refuses a unique key without the distribution column): the answers' `id` and the keyset cursors'
 * tie-break on (time, id).
 */

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 3 })

const origin = () => ({
  serviceName: text('service_name').notNull(),
  serviceVersion: text('service_version'),
  scopeName: text('scope_name'),
  userId: uuid('user_id'),
  clientId: uuid('client_id').references(() => clientApps.id, { onDelete: 'set null' }),
  receivedAt: ts('received_at').notNull().defaultNow(),
})

export const telemetrySpans = pgTable(
  'telemetry_spans',
  {
    id: uuid('id').notNull().defaultRandom(),
    traceId: text('trace_id').notNull(),
    spanId: text('span_id').notNull(),
    parentSpanId: text('parent_span_id'),
    name: text('name').notNull(),
    kind: smallint('kind').notNull(),
    startAt: ts('start_at').notNull(),
    endAt: ts('end_at').notNull(),
    // Nanoseconds, so that "slowest" orders sub-millisecond spans too.
    durationNs: bigint('duration_ns', { mode: 'number' }).notNull(),
    statusCode: smallint('status_code').notNull(),
    statusMessage: text('status_message'),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull(),
    events: jsonb('events').$type<Array<Record<string, unknown>>>(),
    ...origin(),
  },
  (t) => [
    primaryKey({ name: 'telemetry_spans_pkey', columns: [t.traceId, t.spanId] }),
    index('telemetry_spans_trace_idx').on(t.traceId, t.startAt, t.id),
    index('telemetry_spans_service_time_idx').on(t.serviceName, t.startAt, t.id),
    index('telemetry_spans_time_idx').on(t.startAt, t.id),
    index('telemetry_spans_duration_idx').on(t.durationNs, t.id),
    index('telemetry_spans_user_idx').on(t.userId),
    index('telemetry_spans_received_idx').on(t.receivedAt),
    check('telemetry_spans_trace_id_hex', sql`${t.traceId} ~ '^[0-9a-f]{32}$'`),
    check('telemetry_spans_span_id_hex', sql`${t.spanId} ~ '^[0-9a-f]{16}$'`),
    check('telemetry_spans_parent_id_hex', sql`${t.parentSpanId} is null or ${t.parentSpanId} ~ '^[0-9a-f]{16}$'`),
    check('telemetry_spans_kind_range', sql`${t.kind} between 0 and 5`),
    check('telemetry_spans_status_range', sql`${t.statusCode} between 0 and 2`),
    check('telemetry_spans_duration_positive', sql`${t.durationNs} >= 0`),
  ],
)

export const telemetryMetricPoints = pgTable(
  'telemetry_metric_points',
  {
    id: uuid('id').notNull().defaultRandom(),
    name: text('name').notNull(),
    unit: text('unit'),
    type: text('type', { enum: ['gauge', 'sum', 'histogram', 'exponential_histogram', 'summary'] }).notNull(),
    time: ts('time').notNull(),
    startTime: ts('start_time'),
    // gauge and sum: the point's number; histograms and summaries: the mean (sum / count), null when unknown.
    value: doublePrecision('value'),
    count: bigint('count', { mode: 'number' }),
    sum: doublePrecision('sum'),
    min: doublePrecision('min'),
    max: doublePrecision('max'),
    isMonotonic: boolean('is_monotonic'),
    temporality: smallint('temporality'),
    // Bucket bounds and counts, quantiles: kept as sent, for whoever needs the distribution.
    distribution: jsonb('distribution').$type<Record<string, unknown>>(),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull(),
    contentHash: text('content_hash').primaryKey(),
    ...origin(),
  },
  (t) => [
    index('telemetry_metric_points_name_time_idx').on(t.name, t.time),
    index('telemetry_metric_points_user_idx').on(t.userId),
    index('telemetry_metric_points_received_idx').on(t.receivedAt),
    check('telemetry_metric_points_count_positive', sql`${t.count} is null or ${t.count} >= 0`),
    check(
      'telemetry_metric_points_temporality_range',
      sql`${t.temporality} is null or ${t.temporality} between 0 and 2`,
    ),
  ],
)

export const telemetryLogs = pgTable(
  'telemetry_logs',
  {
    id: uuid('id').notNull().defaultRandom(),
    time: ts('time').notNull(),
    severityNumber: smallint('severity_number').notNull(),
    severityText: text('severity_text'),
    body: text('body'),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull(),
    traceId: text('trace_id'),
    spanId: text('span_id'),
    contentHash: text('content_hash').primaryKey(),
    ...origin(),
  },
  (t) => [
    index('telemetry_logs_time_idx').on(t.time, t.id),
    index('telemetry_logs_service_time_idx').on(t.serviceName, t.time, t.id),
    index('telemetry_logs_user_idx').on(t.userId),
    index('telemetry_logs_received_idx').on(t.receivedAt),
    check('telemetry_logs_severity_range', sql`${t.severityNumber} between 0 and 24`),
    check('telemetry_logs_trace_id_hex', sql`${t.traceId} is null or ${t.traceId} ~ '^[0-9a-f]{32}$'`),
    check('telemetry_logs_span_id_hex', sql`${t.spanId} is null or ${t.spanId} ~ '^[0-9a-f]{16}$'`),
  ],
)
