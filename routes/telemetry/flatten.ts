import type {
  KeyValue,
  LogsRequest,
  MetricsRequest,
  OtlpLogRecord,
  OtlpMetric,
  OtlpSpan,
  TracesRequest,
} from './schemas.ts'

/*
 * OTLP/JSON → table rows. A record that breaks the OTLP data model (bad id, missing time, enum out
 * of range) is rejected alone, counted and explained; the rest of the request is stored
 * (OTLP partial success: https://opentelemetry.io/docs/specs/otlp/#partial-success-1).
 * Strings are cut to sane lengths, as OpenTelemetry SDKs' attribute limits do, and NUL characters
 * (which PostgreSQL text and jsonb refuse) are removed.
 */

const MAX_ATTRIBUTES = 128
const MAX_ATTRIBUTE_CHARS = 4096
const MAX_BODY_CHARS = 16384
const MAX_NAME_CHARS = 1024
const MAX_DEPTH = 6
const MAX_EVENTS = 64

export interface Origin {
  serviceName: string
  serviceVersion: string | null
  scopeName: string | null
}

export interface SpanRow extends Origin {
  traceId: string
  spanId: string
  parentSpanId: string | null
  name: string
  kind: number
  startAt: Date
  endAt: Date
  durationNs: number
  statusCode: number
  statusMessage: string | null
  attributes: Record<string, unknown>
  events: Array<Record<string, unknown>> | null
}

export type MetricType = 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary'

export interface MetricPointRow extends Origin {
  name: string
  unit: string | null
  type: MetricType
  time: Date
  startTime: Date | null
  value: number | null
  count: number | null
  sum: number | null
  min: number | null
  max: number | null
  isMonotonic: boolean | null
  temporality: number | null
  distribution: Record<string, unknown> | null
  attributes: Record<string, unknown>
}

export interface LogRow extends Origin {
  time: Date
  severityNumber: number
  severityText: string | null
  body: string | null
  attributes: Record<string, unknown>
  traceId: string | null
  spanId: string | null
}

export interface Flattened<R> {
  rows: R[]
  rejected: number
  /** Why, for `partialSuccess.errorMessage`; may be set with `rejected = 0` (a warning). */
  errorMessage: string
}

class Rejection extends Error {}
const reject = (why: string): never => {
  throw new Rejection(why)
}

/** Counts reasons, then says them in one line: "2 invalid traceId; 1 endTimeUnixNano before start". */
class Reasons {
  private readonly counts = new Map<string, number>()
  add(why: string) {
    this.counts.set(why, (this.counts.get(why) ?? 0) + 1)
  }
  message(): string {
    return [...this.counts].map(([why, n]) => `${n} ${why}`).join('; ')
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Text PostgreSQL takes: no NUL, no lone UTF-16 surrogate (jsonb refuses both), at most `max` characters. */
function clean(s: string, max: number): string {
  const cut = s.length > max ? s.slice(0, max) : s
  return cut.replaceAll('\u0000', '').replace(LONE_SURROGATE, '\uFFFD')
}

const HEX_ID = { 32: /^[0-9a-f]{32}$/, 16: /^[0-9a-f]{16}$/ }
const ZERO = /^0+$/

/** A hex id of 16 or 32 digits, not all zero (OTLP: invalid). Empty or absent → null when optional. */
function hexId(value: string | undefined, digits: 16 | 32, field: string, optional: boolean): string | null {
  const v = (value ?? '').toLowerCase()
  if (v === '') return optional ? null : reject(`missing ${field}`)
  if (!HEX_ID[digits].test(v) || ZERO.test(v)) return reject(`invalid ${field}`)
  return v
}

/** Nanoseconds since the epoch (string or number) → the Date (ms) and the exact nanoseconds. 0 means unset. */
function nanos(value: string | number | undefined, field: string): { at: Date; ns: bigint } | null {
  if (value === undefined || value === '' || value === 0 || value === '0') return null
  let ns: bigint
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return reject(`invalid ${field}`)
    ns = BigInt(Math.round(value))
  } else {
    if (!/^\d{1,20}$/.test(value)) return reject(`invalid ${field}`)
    ns = BigInt(value)
  }
  const ms = Number(ns / 1_000_000n)
  // Beyond year 9999 PostgreSQL and RFC 3339 both give up.
  if (ms > 253402300799999) return reject(`invalid ${field}`)
  return { at: new Date(ms), ns }
}

const INT64_MAX = 9223372036854775807n

/** A 64-bit integer that fits PostgreSQL's bigint (beyond 2^53 it is approximate, as any JSON number). */
function int64(value: unknown, field: string): number | null {
  if (value === undefined) return null
  if (typeof value !== 'number' && typeof value !== 'string') return reject(`invalid ${field}`)
  if (typeof value === 'number') {
    return Number.isFinite(value) && Math.abs(value) < 9.2e18 ? Math.trunc(value) : reject(`invalid ${field}`)
  }
  if (!/^-?\d{1,20}$/.test(value)) return reject(`invalid ${field}`)
  const n = BigInt(value)
  return n <= INT64_MAX && n >= -INT64_MAX ? Number(n) : reject(`invalid ${field}`)
}

function double(value: unknown, field: string): number | null {
  if (value === undefined) return null
  if (typeof value === 'number') return value
  if (typeof value !== 'string') return reject(`invalid ${field}`)
  // proto3 JSON spells non-finite doubles; they have no place in a stored number.
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return null
  const n = Number(value)
  return value.trim() !== '' && Number.isFinite(n) ? n : reject(`invalid ${field}`)
}

function enumValue(
  value: number | string | undefined,
  names: readonly string[],
  prefix: string,
  max: number,
  field: string,
): number {
  if (value === undefined) return 0
  if (typeof value === 'string') {
    const i = names.indexOf(value.toLowerCase().replace(prefix, ''))
    return i >= 0 ? i : reject(`invalid ${field}`)
  }
  return Number.isInteger(value) && value >= 0 && value <= max ? value : reject(`invalid ${field}`)
}

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const
const STATUS_CODES = ['unset', 'ok', 'error'] as const
const TEMPORALITIES = ['unspecified', 'delta', 'cumulative'] as const
const SEVERITIES = [
  'unspecified',
  'trace',
  'trace2',
  'trace3',
  'trace4',
  'debug',
  'debug2',
  'debug3',
  'debug4',
  'info',
  'info2',
  'info3',
  'info4',
  'warn',
  'warn2',
  'warn3',
  'warn4',
  'error',
  'error2',
  'error3',
  'error4',
  'fatal',
  'fatal2',
  'fatal3',
  'fatal4',
] as const
export const SPAN_KIND_NAMES = SPAN_KINDS
export const STATUS_CODE_NAMES = STATUS_CODES

/**
 * AnyValue → plain JSON (ints beyond 2^53 stay strings, bytes stay base64). Below the top level the
 * schema does not look, so every field's type is checked here; a value of the wrong type becomes null.
 */
function anyValue(input: unknown, depth = 0): unknown {
  if (!input || typeof input !== 'object' || depth > MAX_DEPTH) return null
  const v = input as Record<string, unknown>
  if (typeof v.stringValue === 'string') return clean(v.stringValue, MAX_ATTRIBUTE_CHARS)
  if (typeof v.boolValue === 'boolean') return v.boolValue
  if (typeof v.intValue === 'string' || typeof v.intValue === 'number') {
    const n = Number(v.intValue)
    return Number.isSafeInteger(n) ? n : clean(String(v.intValue), 32)
  }
  if (typeof v.doubleValue === 'number') return v.doubleValue
  if (typeof v.doubleValue === 'string') return clean(v.doubleValue, 32)
  if (typeof v.bytesValue === 'string') return clean(v.bytesValue, MAX_ATTRIBUTE_CHARS)
  const array = (v.arrayValue as { values?: unknown } | undefined)?.values
  if (Array.isArray(array)) return array.slice(0, MAX_ATTRIBUTES).map((x) => anyValue(x, depth + 1))
  const kvlist = (v.kvlistValue as { values?: unknown } | undefined)?.values
  if (Array.isArray(kvlist)) return attributes(kvlist, depth + 1)
  return null
}

function attributes(list: unknown, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!Array.isArray(list)) return out
  for (const kv of list.slice(0, MAX_ATTRIBUTES)) {
    if (typeof kv?.key !== 'string') continue
    // defineProperty: a key named __proto__ stays a plain key instead of replacing the prototype.
    Object.defineProperty(out, clean(kv.key, 256), {
      value: anyValue(kv.value, depth),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return out
}

function origin(resource: { attributes?: KeyValue[] } | undefined, scope: { name?: string } | undefined): Origin {
  const attrs = attributes(resource?.attributes)
  const name = attrs['service.name']
  const version = attrs['service.version']
  return {
    // The OpenTelemetry resource semantic conventions' fallback for an unnamed service.
    serviceName: typeof name === 'string' && name !== '' ? clean(name, 200) : 'unknown_service',
    serviceVersion: typeof version === 'string' && version !== '' ? clean(version, 200) : null,
    scopeName: scope?.name ? clean(scope.name, 200) : null,
  }
}

/** Runs `fn` over every record, keeping the rows and counting the rejections with their reasons. */
function collect<R>(each: (emit: (fn: () => R) => void) => void, warnings: string[] = []): Flattened<R> {
  const rows: R[] = []
  const reasons = new Reasons()
  let rejected = 0
  each((fn) => {
    try {
      rows.push(fn())
    } catch (err) {
      if (!(err instanceof Rejection)) throw err
      rejected++
      reasons.add(err.message)
    }
  })
  const message = [reasons.message(), ...warnings].filter(Boolean).join('; ')
  return { rows, rejected, errorMessage: message }
}

function spanRow(span: OtlpSpan, o: Origin): SpanRow {
  const traceId = hexId(span.traceId, 32, 'traceId', false) as string
  const spanId = hexId(span.spanId, 16, 'spanId', false) as string
  const parentSpanId = hexId(span.parentSpanId, 16, 'parentSpanId', true)
  const name = clean(span.name ?? '', MAX_NAME_CHARS)
  if (name === '') reject('missing name')
  const start = nanos(span.startTimeUnixNano, 'startTimeUnixNano') ?? reject('missing startTimeUnixNano')
  const end = nanos(span.endTimeUnixNano, 'endTimeUnixNano') ?? reject('missing endTimeUnixNano')
  if (end.ns < start.ns) reject('endTimeUnixNano before startTimeUnixNano')
  if (end.ns - start.ns > INT64_MAX) reject('span longer than 292 years')
  const events = (span.events ?? []).slice(0, MAX_EVENTS).map((e) => ({
    name: clean(e.name ?? '', MAX_NAME_CHARS),
    time: nanos(e.timeUnixNano, 'events.timeUnixNano')?.at.toISOString() ?? null,
    attributes: attributes(e.attributes),
  }))
  return {
    ...o,
    traceId,
    spanId,
    parentSpanId,
    name,
    kind: enumValue(span.kind, SPAN_KINDS, 'span_kind_', 5, 'kind'),
    startAt: start.at,
    endAt: end.at,
    durationNs: Number(end.ns - start.ns),
    statusCode: enumValue(span.status?.code, STATUS_CODES, 'status_code_', 2, 'status.code'),
    statusMessage: span.status?.message ? clean(span.status.message, MAX_ATTRIBUTE_CHARS) : null,
    attributes: attributes(span.attributes),
    events: events.length > 0 ? events : null,
  }
}

export function flattenTraces(body: TracesRequest): Flattened<SpanRow> {
  return collect((emit) => {
    for (const rs of body.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        const o = origin(rs.resource, ss.scope)
        for (const span of ss.spans ?? []) emit(() => spanRow(span, o))
      }
    }
  })
}

/** Only the known fields of ExponentialHistogramDataPoint.Buckets: whatever else was sent is not stored. */
function expBuckets(b: Record<string, unknown> | undefined, field: string) {
  if (!b) return null
  const offset = b.offset ?? 0
  if (typeof offset !== 'number' || !Number.isInteger(offset)) return reject(`invalid ${field}.offset`)
  const counts = b.bucketCounts ?? []
  if (!Array.isArray(counts)) return reject(`invalid ${field}.bucketCounts`)
  return { offset, bucket_counts: counts.map((c) => int64(c, `${field}.bucketCounts`)) }
}

type AnyPoint = NonNullable<NonNullable<NonNullable<OtlpMetric['histogram']>['dataPoints']>[number]> & {
  asDouble?: number | string
  asInt?: number | string
}

function pointRow(
  metric: OtlpMetric,
  type: MetricType,
  p: AnyPoint,
  o: Origin,
  extra: { isMonotonic?: boolean; temporality?: number | string },
): MetricPointRow {
  const name = clean(metric.name ?? '', 255)
  if (name === '') reject('metric without a name')
  const time = nanos(p.timeUnixNano, 'timeUnixNano') ?? reject('missing timeUnixNano')
  const base = {
    ...o,
    name,
    unit: metric.unit ? clean(metric.unit, 64) : null,
    type,
    time: time.at,
    startTime: nanos(p.startTimeUnixNano, 'startTimeUnixNano')?.at ?? null,
    isMonotonic: extra.isMonotonic ?? null,
    temporality:
      extra.temporality === undefined
        ? null
        : enumValue(extra.temporality, TEMPORALITIES, 'aggregation_temporality_', 2, 'aggregationTemporality'),
    attributes: attributes(p.attributes),
    count: null,
    sum: null,
    min: null,
    max: null,
    distribution: null,
  }
  if (type === 'gauge' || type === 'sum') {
    const value =
      p.asDouble !== undefined
        ? double(p.asDouble, 'asDouble')
        : p.asInt !== undefined
          ? int64(p.asInt, 'asInt')
          : reject('data point without a value')
    return { ...base, value }
  }
  const count = int64(p.count, 'count') ?? 0
  if (count < 0) reject('invalid count')
  const sum = double(p.sum, 'sum')
  const distribution: Record<string, unknown> =
    type === 'histogram'
      ? {
          bucket_counts: (p.bucketCounts ?? []).map((c) => int64(c, 'bucketCounts')),
          explicit_bounds: (p.explicitBounds ?? []).map((b) => double(b, 'explicitBounds')),
        }
      : type === 'exponential_histogram'
        ? {
            scale: p.scale ?? 0,
            zero_count: int64(p.zeroCount, 'zeroCount') ?? 0,
            positive: expBuckets(p.positive, 'positive'),
            negative: expBuckets(p.negative, 'negative'),
          }
        : {
            quantile_values: (p.quantileValues ?? []).map((q: Record<string, unknown>) => ({
              quantile: double(q.quantile, 'quantileValues.quantile'),
              value: double(q.value, 'quantileValues.value'),
            })),
          }
  return {
    ...base,
    count,
    sum,
    min: double(p.min, 'min'),
    max: double(p.max, 'max'),
    value: sum !== null && count > 0 ? sum / count : null,
    distribution,
  }
}

export function flattenMetrics(body: MetricsRequest): Flattened<MetricPointRow> {
  const warnings: string[] = []
  return collect((emit) => {
    for (const rm of body.resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) {
        const o = origin(rm.resource, sm.scope)
        for (const m of sm.metrics ?? []) {
          const kinds: Array<[MetricType, { dataPoints?: AnyPoint[] } | undefined, object]> = [
            ['gauge', m.gauge, {}],
            [
              'sum',
              m.sum,
              { isMonotonic: m.sum?.isMonotonic ?? false, temporality: m.sum?.aggregationTemporality ?? 0 },
            ],
            ['histogram', m.histogram, { temporality: m.histogram?.aggregationTemporality ?? 0 }],
            [
              'exponential_histogram',
              m.exponentialHistogram,
              { temporality: m.exponentialHistogram?.aggregationTemporality ?? 0 },
            ],
            ['summary', m.summary, {}],
          ]
          const present = kinds.filter(([, data]) => data !== undefined)
          // A metric of a type this server does not know has no points to count: a warning, not a rejection.
          if (present.length === 0)
            warnings.push(`metric ${JSON.stringify(clean(m.name ?? '', 100))} has no known data`)
          for (const [type, data, extra] of present) {
            for (const p of data?.dataPoints ?? []) emit(() => pointRow(m, type, p, o, extra))
          }
        }
      }
    }
  }, warnings)
}

function logRow(r: OtlpLogRecord, o: Origin, receivedAt: Date): LogRow {
  const time = nanos(r.timeUnixNano, 'timeUnixNano') ?? nanos(r.observedTimeUnixNano, 'observedTimeUnixNano') ?? null
  // A string body gets more room than an attribute value.
  const text = (r.body as { stringValue?: unknown } | undefined)?.stringValue
  const body = typeof text === 'string' ? clean(text, MAX_BODY_CHARS) : anyValue(r.body)
  const attrs = attributes(r.attributes)
  if (r.eventName) attrs['event.name'] = clean(r.eventName, MAX_NAME_CHARS)
  return {
    ...o,
    // OTLP: with neither time set, the receiver's time is the best there is.
    time: time?.at ?? receivedAt,
    severityNumber: enumValue(r.severityNumber, SEVERITIES, 'severity_number_', 24, 'severityNumber'),
    severityText: r.severityText ? clean(r.severityText, 64) : null,
    body: body === null ? null : clean(typeof body === 'string' ? body : JSON.stringify(body), MAX_BODY_CHARS),
    attributes: attrs,
    traceId: hexId(r.traceId, 32, 'traceId', true),
    spanId: hexId(r.spanId, 16, 'spanId', true),
  }
}

export function flattenLogs(body: LogsRequest, receivedAt = new Date()): Flattened<LogRow> {
  return collect((emit) => {
    for (const rl of body.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) {
        const o = origin(rl.resource, sl.scope)
        for (const r of sl.logRecords ?? []) emit(() => logRow(r, o, receivedAt))
      }
    }
  })
}
