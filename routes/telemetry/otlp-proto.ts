import protobuf from 'protobufjs/light.js'

/*
 * OTLP/HTTP binary protobuf (https://opentelemetry.io/docs/specs/otlp/#otlphttp-request).
 * The maintained OpenTelemetry JS packages (@opentelemetry/otlp-transformer 0.223) only *encode*
 * requests and decode responses; nothing of theirs decodes an export request. So the wire format is
 * described here for protobufjs, field numbers as in opentelemetry-proto v1 (collector/*_service.proto),
 * and the tests prove it against the real ProtobufTraceSerializer / ProtobufMetricsSerializer /
 * ProtobufLogsSerializer. Only the fields this server stores are declared: protobuf skips the others,
 * which is what OTLP asks of a receiver for unknown fields. Enums are read as plain integers.
 */

type Fields = Record<string, { type: string; id: number; rule?: 'repeated' }>
const msg = (fields: Fields, oneofs?: Record<string, { oneof: string[] }>) => ({ fields, ...(oneofs && { oneofs }) })
const rep = (type: string, id: number) => ({ type, id, rule: 'repeated' as const })

const descriptor = {
  nested: {
    otlp: {
      nested: {
        AnyValue: msg(
          {
            stringValue: { type: 'string', id: 1 },
            boolValue: { type: 'bool', id: 2 },
            intValue: { type: 'int64', id: 3 },
            doubleValue: { type: 'double', id: 4 },
            arrayValue: { type: 'ArrayValue', id: 5 },
            kvlistValue: { type: 'KeyValueList', id: 6 },
            bytesValue: { type: 'bytes', id: 7 },
          },
          {
            value: {
              oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'],
            },
          },
        ),
        ArrayValue: msg({ values: rep('AnyValue', 1) }),
        KeyValueList: msg({ values: rep('KeyValue', 1) }),
        KeyValue: msg({ key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } }),
        InstrumentationScope: msg({ name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } }),
        Resource: msg({ attributes: rep('KeyValue', 1) }),

        ExportTraceServiceRequest: msg({ resourceSpans: rep('ResourceSpans', 1) }),
        ResourceSpans: msg({ resource: { type: 'Resource', id: 1 }, scopeSpans: rep('ScopeSpans', 2) }),
        ScopeSpans: msg({ scope: { type: 'InstrumentationScope', id: 1 }, spans: rep('Span', 2) }),
        Span: msg({
          traceId: { type: 'bytes', id: 1 },
          spanId: { type: 'bytes', id: 2 },
          parentSpanId: { type: 'bytes', id: 4 },
          name: { type: 'string', id: 5 },
          kind: { type: 'int32', id: 6 },
          startTimeUnixNano: { type: 'fixed64', id: 7 },
          endTimeUnixNano: { type: 'fixed64', id: 8 },
          attributes: rep('KeyValue', 9),
          events: rep('SpanEvent', 11),
          status: { type: 'Status', id: 15 },
        }),
        SpanEvent: msg({
          timeUnixNano: { type: 'fixed64', id: 1 },
          name: { type: 'string', id: 2 },
          attributes: rep('KeyValue', 3),
        }),
        Status: msg({ message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } }),
        // google.rpc.Status: what OTLP/HTTP answers a protobuf request that failed.
        RpcStatus: msg({ code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 } }),

        ExportMetricsServiceRequest: msg({ resourceMetrics: rep('ResourceMetrics', 1) }),
        ResourceMetrics: msg({ resource: { type: 'Resource', id: 1 }, scopeMetrics: rep('ScopeMetrics', 2) }),
        ScopeMetrics: msg({ scope: { type: 'InstrumentationScope', id: 1 }, metrics: rep('Metric', 2) }),
        Metric: msg(
          {
            name: { type: 'string', id: 1 },
            description: { type: 'string', id: 2 },
            unit: { type: 'string', id: 3 },
            gauge: { type: 'Gauge', id: 5 },
            sum: { type: 'Sum', id: 7 },
            histogram: { type: 'Histogram', id: 9 },
            exponentialHistogram: { type: 'ExponentialHistogram', id: 10 },
            summary: { type: 'Summary', id: 11 },
          },
          { data: { oneof: ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] } },
        ),
        Gauge: msg({ dataPoints: rep('NumberDataPoint', 1) }),
        Sum: msg({
          dataPoints: rep('NumberDataPoint', 1),
          aggregationTemporality: { type: 'int32', id: 2 },
          isMonotonic: { type: 'bool', id: 3 },
        }),
        Histogram: msg({ dataPoints: rep('HistogramDataPoint', 1), aggregationTemporality: { type: 'int32', id: 2 } }),
        ExponentialHistogram: msg({
          dataPoints: rep('ExponentialHistogramDataPoint', 1),
          aggregationTemporality: { type: 'int32', id: 2 },
        }),
        Summary: msg({ dataPoints: rep('SummaryDataPoint', 1) }),
        NumberDataPoint: msg(
          {
            attributes: rep('KeyValue', 7),
            startTimeUnixNano: { type: 'fixed64', id: 2 },
            timeUnixNano: { type: 'fixed64', id: 3 },
            asDouble: { type: 'double', id: 4 },
            asInt: { type: 'sfixed64', id: 6 },
          },
          { value: { oneof: ['asDouble', 'asInt'] } },
        ),
        HistogramDataPoint: msg({
          attributes: rep('KeyValue', 9),
          startTimeUnixNano: { type: 'fixed64', id: 2 },
          timeUnixNano: { type: 'fixed64', id: 3 },
          count: { type: 'fixed64', id: 4 },
          sum: { type: 'double', id: 5 },
          bucketCounts: rep('fixed64', 6),
          explicitBounds: rep('double', 7),
          min: { type: 'double', id: 11 },
          max: { type: 'double', id: 12 },
        }),
        ExponentialHistogramDataPoint: msg({
          attributes: rep('KeyValue', 1),
          startTimeUnixNano: { type: 'fixed64', id: 2 },
          timeUnixNano: { type: 'fixed64', id: 3 },
          count: { type: 'fixed64', id: 4 },
          sum: { type: 'double', id: 5 },
          scale: { type: 'sint32', id: 6 },
          zeroCount: { type: 'fixed64', id: 7 },
          positive: { type: 'Buckets', id: 8 },
          negative: { type: 'Buckets', id: 9 },
          min: { type: 'double', id: 12 },
          max: { type: 'double', id: 13 },
        }),
        Buckets: msg({ offset: { type: 'sint32', id: 1 }, bucketCounts: rep('uint64', 2) }),
        SummaryDataPoint: msg({
          attributes: rep('KeyValue', 7),
          startTimeUnixNano: { type: 'fixed64', id: 2 },
          timeUnixNano: { type: 'fixed64', id: 3 },
          count: { type: 'fixed64', id: 4 },
          sum: { type: 'double', id: 5 },
          quantileValues: rep('ValueAtQuantile', 6),
        }),
        ValueAtQuantile: msg({ quantile: { type: 'double', id: 1 }, value: { type: 'double', id: 2 } }),

        ExportLogsServiceRequest: msg({ resourceLogs: rep('ResourceLogs', 1) }),
        ResourceLogs: msg({ resource: { type: 'Resource', id: 1 }, scopeLogs: rep('ScopeLogs', 2) }),
        ScopeLogs: msg({ scope: { type: 'InstrumentationScope', id: 1 }, logRecords: rep('LogRecord', 2) }),
        LogRecord: msg({
          timeUnixNano: { type: 'fixed64', id: 1 },
          observedTimeUnixNano: { type: 'fixed64', id: 11 },
          severityNumber: { type: 'int32', id: 2 },
          severityText: { type: 'string', id: 3 },
          body: { type: 'AnyValue', id: 5 },
          attributes: rep('KeyValue', 6),
          traceId: { type: 'bytes', id: 9 },
          spanId: { type: 'bytes', id: 10 },
          eventName: { type: 'string', id: 12 },
        }),

        ExportTraceServiceResponse: msg({ partialSuccess: { type: 'ExportTracePartialSuccess', id: 1 } }),
        ExportTracePartialSuccess: msg({
          rejectedSpans: { type: 'int64', id: 1 },
          errorMessage: { type: 'string', id: 2 },
        }),
        ExportMetricsServiceResponse: msg({ partialSuccess: { type: 'ExportMetricsPartialSuccess', id: 1 } }),
        ExportMetricsPartialSuccess: msg({
          rejectedDataPoints: { type: 'int64', id: 1 },
          errorMessage: { type: 'string', id: 2 },
        }),
        ExportLogsServiceResponse: msg({ partialSuccess: { type: 'ExportLogsPartialSuccess', id: 1 } }),
        ExportLogsPartialSuccess: msg({
          rejectedLogRecords: { type: 'int64', id: 1 },
          errorMessage: { type: 'string', id: 2 },
        }),
      },
    },
  },
}

const root = protobuf.Root.fromJSON(descriptor)
const type = (name: string) => root.lookupType(`otlp.${name}`)

export type Signal = 'traces' | 'metrics' | 'logs'

const REQUEST = {
  traces: type('ExportTraceServiceRequest'),
  metrics: type('ExportMetricsServiceRequest'),
  logs: type('ExportLogsServiceRequest'),
}
const RESPONSE = {
  traces: type('ExportTraceServiceResponse'),
  metrics: type('ExportMetricsServiceResponse'),
  logs: type('ExportLogsServiceResponse'),
}

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId'])

// bytes arrive base64 (as in OTLP/JSON for bytesValue); ids are hex in OTLP/JSON, so they are turned into hex.
function idsToHex(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToHex)
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = ID_FIELDS.has(k) && typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : idsToHex(v)
    }
    return out
  }
  return value
}

/**
 * Decodes a binary export request into the OTLP/JSON shape the JSON route accepts (hex ids, 64-bit
 * integers as decimal strings, enums as integers), so one validator and one flattener serve both.
 * Throws on bytes that are not a valid message.
 */
export function decodeExportRequest(signal: Signal, bytes: Uint8Array): unknown {
  const t = REQUEST[signal]
  const message = t.decode(bytes)
  return idsToHex(t.toObject(message, { longs: String, enums: Number, bytes: String, defaults: false }))
}

/** Encodes the export response (`partialSuccess` only when something was rejected). */
export function encodeExportResponse(signal: Signal, body: { partialSuccess?: Record<string, unknown> }): Buffer {
  const t = RESPONSE[signal]
  return Buffer.from(t.encode(t.fromObject(body)).finish())
}

// HTTP status → gRPC code for google.rpc.Status (https://opentelemetry.io/docs/specs/otlp/#failures-1).
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 403: 7, 404: 5, 413: 3, 415: 3, 429: 8, 503: 14 }

/** A failed protobuf export's answer: a google.rpc.Status carrying our error identifier and message. */
export function encodeRpcStatus(httpStatus: number, message: string): Buffer {
  const t = type('RpcStatus')
  return Buffer.from(t.encode(t.fromObject({ code: GRPC_CODE[httpStatus] ?? 2, message })).finish())
}

export function decodeRpcStatus(bytes: Uint8Array): { code: number; message: string } {
  const t = type('RpcStatus')
  return t.toObject(t.decode(bytes), { defaults: true }) as { code: number; message: string }
}
