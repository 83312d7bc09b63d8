import { Type } from '@sinclair/typebox'
import {
  CATALOGUE,
  type MeasurementType,
  type MeasurementTypeName,
  TYPE_NAMES,
} from '../../db/schema/measurement-catalogue.ts'
import type { RangesByKind } from '../../plugins/input-validation.ts'
import { DateTimeSchema, DateTimeWindowSchema, PageSchema, WINDOWS } from '../common.ts'
import { BUCKETS, type Bucket } from './repository.ts'

/** The catalogue as the sample schema's `x-ranges` keyword (plugins/input-validation.ts) checks it. */
const SAMPLE_RANGES: RangesByKind = {
  by: 'type',
  of: 'value',
  ranges: Object.fromEntries(
    TYPE_NAMES.map((name) => {
      const t: MeasurementType = CATALOGUE[name]
      return [name, { min: t.min, max: t.max, unit: t.unit, integer: t.integer ?? false }]
    }),
  ),
}

const catalogueText = TYPE_NAMES.map((name) => {
  const t = CATALOGUE[name]
  return `\`${name}\` (${t.unit}, ${t.min}..${t.max}${'integer' in t ? ', whole numbers' : ''})`
}).join(', ')

// A plain string enum: a wrong type is reported once ("must be equal to one of the allowed values").
export const MeasurementTypeSchema = Type.Unsafe<MeasurementTypeName>({
  type: 'string',
  enum: TYPE_NAMES,
  description: `Measurement type. The catalogue (unit, valid range): ${catalogueText}.`,
})

export const DeviceIdSchema = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'Identifier of the recording device, as the app knows it.',
  examples: ['nowatch-7F3A'],
})

export const SampleInSchema = Type.Object(
  {
    type: MeasurementTypeSchema,
    timestamp: DateTimeWindowSchema(WINDOWS.recorded, {
      description: 'When the value was measured (RFC 3339, stored to the millisecond: a longer fraction is truncated).',
      examples: ['2024-07-01T12:34:56.000Z'],
    }),
    value: Type.Number({ description: "In the type's unit, within its range.", examples: [62] }),
  },
  { additionalProperties: false, 'x-ranges': SAMPLE_RANGES },
)

export const IngestBodySchema = Type.Object(
  {
    device_id: Type.Optional(DeviceIdSchema),
    samples: Type.Array(SampleInSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
)

export const IngestResultSchema = Type.Object(
  {
    accepted: Type.Integer({ description: 'Samples stored by this request.' }),
    duplicates: Type.Integer({
      description: 'Samples already stored (same type, timestamp and device), or repeated within the batch: ignored.',
    }),
  },
  { additionalProperties: false },
)

const RangeFields = {
  from: Type.Optional(DateTimeSchema),
  to: Type.Optional(DateTimeSchema),
}

export const ListQuerySchema = Type.Object(
  {
    type: MeasurementTypeSchema,
    ...RangeFields,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 1000 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
)

export const SampleSchema = Type.Object(
  {
    type: MeasurementTypeSchema,
    timestamp: DateTimeSchema,
    value: Type.Number(),
    device_id: Type.Union([Type.String(), Type.Null()], { description: 'null when sent without a device.' }),
  },
  { additionalProperties: false },
)

export const SamplePageSchema = PageSchema(SampleSchema)

export const AggregateQuerySchema = Type.Object(
  {
    type: MeasurementTypeSchema,
    from: DateTimeSchema,
    to: DateTimeSchema,
    bucket: Type.Unsafe<Bucket>({
      type: 'string',
      enum: BUCKETS,
      default: '1h',
      description: "Bucket width. `1h` and `1d` follow the user's time zone (a DST day has 23 or 25 hours).",
    }),
  },
  { additionalProperties: false },
)

export const AggregateBucketSchema = Type.Object(
  {
    start: DateTimeSchema,
    end: DateTimeSchema,
    date: Type.Optional(Type.String({ description: "`1d` only: the calendar day in the user's time zone." })),
    count: Type.Integer(),
    avg: Type.Number(),
    min: Type.Number(),
    max: Type.Number(),
    sum: Type.Number(),
  },
  { additionalProperties: false },
)

export const AggregateResultSchema = Type.Object(
  {
    type: MeasurementTypeSchema,
    bucket: Type.String(),
    time_zone: Type.String({ description: "The user's IANA time zone that hours and days follow." }),
    unit: Type.String(),
    data: Type.Array(AggregateBucketSchema),
  },
  { additionalProperties: false },
)

export const DeleteQuerySchema = Type.Object(
  {
    type: Type.Optional(MeasurementTypeSchema),
    from: DateTimeSchema,
    to: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const DeleteResultSchema = Type.Object(
  { deleted: Type.Integer({ description: 'Samples removed.' }) },
  { additionalProperties: false },
)

export const CatalogueSchema = Type.Object(
  {
    data: Type.Array(
      Type.Object(
        {
          type: MeasurementTypeSchema,
          unit: Type.String(),
          min: Type.Number(),
          max: Type.Number(),
          integer: Type.Boolean(),
          additive: Type.Boolean({
            description: 'Samples are amounts since the previous sample; statistics sum them.',
          }),
          codes: Type.Optional(Type.Record(Type.String(), Type.String())),
          description: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)
