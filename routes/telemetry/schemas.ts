import { type Static, type TObject, type TProperties, Type } from '@sinclair/typebox'
import { DateTimeSchema, PaginationQuerySchema, UuidSchema } from '../common.ts'

/*
 * OTLP/JSON request bodies (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).
 * Open objects: OTLP says a receiver ignores fields it does not know. The schema checks the shape
 * (which field is a list, an object, a number); the meaning of each record (ids, times, ranges) is
 * checked by the flattener, which rejects that record alone and reports it in `partialSuccess`.
 */

const open = <T extends TProperties>(props: T, description?: string): TObject<T> =>
  Type.Object(props, { additionalProperties: true, ...(description && { description }) })

/** OTLP: 64-bit integers as decimal strings or JSON numbers. */
const Int64 = Type.Union([Type.String(), Type.Number()], { description: '64-bit integer, as string or number' })
const Nanos = Type.Union([Type.String(), Type.Number()], {
  description: 'Nanoseconds since the Unix epoch, as a decimal string (or number)',
})
/** proto3 JSON writes NaN and infinities as strings. */
const Double = Type.Union([Type.Number(), Type.String()])
/** OTLP: enums are integers; the enum value names are accepted too. */
const Enum = Type.Union([Type.Integer(), Type.String()])
const Hex = (description: string) => Type.String({ description })

const OpenObject = Type.Object({}, { additionalProperties: true })

/** Checked value by value when flattening (a value of a wrong type is stored as null), not here. */
export const AnyValueSchema = Type.Object(
  {},
  {
    additionalProperties: true,
    description:
      'OTLP AnyValue: one of stringValue, boolValue, intValue, doubleValue, bytesValue (base64), arrayValue { values }, kvlistValue { values }',
  },
)
export const KeyValueSchema = open({ key: Type.String(), value: Type.Optional(AnyValueSchema) })
const Attributes = Type.Optional(Type.Array(KeyValueSchema))
const ResourceSchema = open({ attributes: Attributes })
const ScopeSchema = open({ name: Type.Optional(Type.String()), version: Type.Optional(Type.String()) })

export const SpanSchema = open({
  traceId: Type.Optional(Hex('16 bytes as 32 lower-case hex digits')),
  spanId: Type.Optional(Hex('8 bytes as 16 hex digits')),
  parentSpanId: Type.Optional(Hex('8 bytes as 16 hex digits; empty for a root span')),
  name: Type.Optional(Type.String()),
  kind: Type.Optional(Enum),
  startTimeUnixNano: Type.Optional(Nanos),
  endTimeUnixNano: Type.Optional(Nanos),
  attributes: Attributes,
  events: Type.Optional(
    Type.Array(
      open({ timeUnixNano: Type.Optional(Nanos), name: Type.Optional(Type.String()), attributes: Attributes }),
    ),
  ),
  status: Type.Optional(open({ code: Type.Optional(Enum), message: Type.Optional(Type.String()) })),
})

export const TracesRequestSchema = open(
  {
    resourceSpans: Type.Optional(
      Type.Array(
        open({
          resource: Type.Optional(ResourceSchema),
          scopeSpans: Type.Optional(
            Type.Array(open({ scope: Type.Optional(ScopeSchema), spans: Type.Optional(Type.Array(SpanSchema)) })),
          ),
        }),
      ),
    ),
  },
  'OTLP ExportTraceServiceRequest',
)

const point = {
  attributes: Attributes,
  startTimeUnixNano: Type.Optional(Nanos),
  timeUnixNano: Type.Optional(Nanos),
}
export const NumberDataPointSchema = open({ ...point, asDouble: Type.Optional(Double), asInt: Type.Optional(Int64) })
export const HistogramDataPointSchema = open({
  ...point,
  count: Type.Optional(Int64),
  sum: Type.Optional(Double),
  min: Type.Optional(Double),
  max: Type.Optional(Double),
  bucketCounts: Type.Optional(Type.Array(Int64)),
  explicitBounds: Type.Optional(Type.Array(Double)),
  scale: Type.Optional(Type.Integer()),
  zeroCount: Type.Optional(Int64),
  positive: Type.Optional(OpenObject),
  negative: Type.Optional(OpenObject),
  quantileValues: Type.Optional(Type.Array(OpenObject)),
})
const points = <T extends TObject>(p: T) => Type.Optional(Type.Array(p))

export const MetricSchema = open({
  name: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  unit: Type.Optional(Type.String()),
  gauge: Type.Optional(open({ dataPoints: points(NumberDataPointSchema) })),
  sum: Type.Optional(
    open({
      dataPoints: points(NumberDataPointSchema),
      aggregationTemporality: Type.Optional(Enum),
      isMonotonic: Type.Optional(Type.Boolean()),
    }),
  ),
  histogram: Type.Optional(
    open({ dataPoints: points(HistogramDataPointSchema), aggregationTemporality: Type.Optional(Enum) }),
  ),
  exponentialHistogram: Type.Optional(
    open({ dataPoints: points(HistogramDataPointSchema), aggregationTemporality: Type.Optional(Enum) }),
  ),
  summary: Type.Optional(open({ dataPoints: points(HistogramDataPointSchema) })),
})

export const MetricsRequestSchema = open(
  {
    resourceMetrics: Type.Optional(
      Type.Array(
        open({
          resource: Type.Optional(ResourceSchema),
          scopeMetrics: Type.Optional(
            Type.Array(open({ scope: Type.Optional(ScopeSchema), metrics: Type.Optional(Type.Array(MetricSchema)) })),
          ),
        }),
      ),
    ),
  },
  'OTLP ExportMetricsServiceRequest',
)

export const LogRecordSchema = open({
  timeUnixNano: Type.Optional(Nanos),
  observedTimeUnixNano: Type.Optional(Nanos),
  severityNumber: Type.Optional(Enum),
  severityText: Type.Optional(Type.String()),
  body: Type.Optional(AnyValueSchema),
  attributes: Attributes,
  traceId: Type.Optional(Hex('32 hex digits, or empty')),
  spanId: Type.Optional(Hex('16 hex digits, or empty')),
  eventName: Type.Optional(Type.String()),
})

export const LogsRequestSchema = open(
  {
    resourceLogs: Type.Optional(
      Type.Array(
        open({
          resource: Type.Optional(ResourceSchema),
          scopeLogs: Type.Optional(
            Type.Array(
              open({ scope: Type.Optional(ScopeSchema), logRecords: Type.Optional(Type.Array(LogRecordSchema)) }),
            ),
          ),
        }),
      ),
    ),
  },
  'OTLP ExportLogsServiceRequest',
)

export type AnyValue = Static<typeof AnyValueSchema>
export type KeyValue = Static<typeof KeyValueSchema>
export type TracesRequest = Static<typeof TracesRequestSchema>
export type MetricsRequest = Static<typeof MetricsRequestSchema>
export type LogsRequest = Static<typeof LogsRequestSchema>
export type OtlpSpan = Static<typeof SpanSchema>
export type OtlpMetric = Static<typeof MetricSchema>
export type OtlpLogRecord = Static<typeof LogRecordSchema>

const partial = (countField: string) =>
  Type.Object(
    {
      partialSuccess: Type.Optional(
        Type.Object(
          {
            [countField]: Type.Integer({ minimum: 0 }),
            errorMessage: Type.String(),
          },
          { additionalProperties: false },
        ),
      ),
    },
    {
      additionalProperties: false,
      description:
        'OTLP Export…ServiceResponse. `partialSuccess` only when some items were rejected (their count and why); the accepted ones are stored.',
    },
  )
export const TracesResponseSchema = partial('rejectedSpans')
export const MetricsResponseSchema = partial('rejectedDataPoints')
export const LogsResponseSchema = partial('rejectedLogRecords')

// ---- admin queries ----

const TraceIdSchema = Type.String({ pattern: '^[0-9a-fA-F]{32}$', description: '32 hex digits' })
const RangeQuery = {
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'resource service.name' })),
  from: Type.Optional(DateTimeSchema),
  to: Type.Optional(DateTimeSchema),
  user_id: Type.Optional(UuidSchema),
}

export const TraceParamsSchema = Type.Object({ trace_id: TraceIdSchema }, { additionalProperties: false })
export const SpansQuerySchema = Type.Object(
  { ...PaginationQuerySchema.properties, ...RangeQuery, name: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
)
export const SlowestSpansQuerySchema = Type.Object(
  { ...PaginationQuerySchema.properties, ...RangeQuery, name: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
)
export const LogsQuerySchema = Type.Object(
  {
    ...PaginationQuerySchema.properties,
    ...RangeQuery,
    min_severity: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 24,
        description: 'OTLP severity number (9 INFO, 13 WARN, 17 ERROR, 21 FATAL)',
      }),
    ),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'text the body contains (any case)' })),
    trace_id: Type.Optional(TraceIdSchema),
  },
  { additionalProperties: false },
)
export const BUCKETS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '1d': 86400 } as const
export const MetricSeriesQuerySchema = Type.Object(
  {
    ...PaginationQuerySchema.properties,
    name: Type.String({ minLength: 1, maxLength: 255 }),
    from: DateTimeSchema,
    to: DateTimeSchema,
    bucket: Type.Union(
      Object.keys(BUCKETS).map((b) => Type.Literal(b)),
      { default: '1h', description: 'bucket width (UTC-aligned)' },
    ),
    service: RangeQuery.service,
    user_id: RangeQuery.user_id,
  },
  { additionalProperties: false },
)

const Origin = {
  service_name: Type.String(),
  service_version: Type.Union([Type.String(), Type.Null()]),
  scope_name: Type.Union([Type.String(), Type.Null()]),
  user_id: Type.Union([UuidSchema, Type.Null()]),
  client_id: Type.Union([UuidSchema, Type.Null()]),
  received_at: DateTimeSchema,
}
const Json = Type.Object({}, { additionalProperties: true })

export const SpanOutSchema = Type.Object(
  {
    id: UuidSchema,
    trace_id: Type.String(),
    span_id: Type.String(),
    parent_span_id: Type.Union([Type.String(), Type.Null()]),
    name: Type.String(),
    kind: Type.Union(
      ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'].map((k) => Type.Literal(k)),
    ),
    start_time: DateTimeSchema,
    end_time: DateTimeSchema,
    duration_ms: Type.Number({ description: 'milliseconds, with sub-millisecond decimals' }),
    status_code: Type.Union(['unset', 'ok', 'error'].map((k) => Type.Literal(k))),
    status_message: Type.Union([Type.String(), Type.Null()]),
    attributes: Json,
    events: Type.Array(Json),
    ...Origin,
  },
  { additionalProperties: false },
)

export const LogOutSchema = Type.Object(
  {
    id: UuidSchema,
    time: DateTimeSchema,
    severity_number: Type.Integer(),
    severity_text: Type.Union([Type.String(), Type.Null()]),
    body: Type.Union([Type.String(), Type.Null()]),
    attributes: Json,
    trace_id: Type.Union([Type.String(), Type.Null()]),
    span_id: Type.Union([Type.String(), Type.Null()]),
    ...Origin,
  },
  { additionalProperties: false },
)

export const MetricBucketSchema = Type.Object(
  {
    bucket_start: DateTimeSchema,
    points: Type.Integer({ description: 'data points in the bucket' }),
    avg: Type.Union([Type.Number(), Type.Null()]),
    min: Type.Union([Type.Number(), Type.Null()]),
    max: Type.Union([Type.Number(), Type.Null()]),
    sum: Type.Union([Type.Number(), Type.Null()]),
  },
  { additionalProperties: false },
)

export type SpansQuery = Static<typeof SpansQuerySchema>
export type LogsQuery = Static<typeof LogsQuerySchema>
export type MetricSeriesQuery = Static<typeof MetricSeriesQuerySchema>
