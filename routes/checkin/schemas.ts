import { Type } from '@sinclair/typebox'
import {
  DateSchema,
  DateTimeSchema,
  DateTimeWindowSchema,
  PaginationQuerySchema,
  UuidSchema,
  WINDOWS,
} from '../common.ts'
import { NoteSchema, TagsSchema, UpdatedSinceQuerySchema } from '../journal/schemas.ts'

const score = (what: string, low: string, high: string) =>
  Type.Integer({ minimum: 1, maximum: 5, description: `${what}: 1 (${low}) … 5 (${high}).` })

export const MoodSchema = score('Mood', 'very bad', 'very good')
export const EnergySchema = score('Energy', 'exhausted', 'full of energy')
export const StressSchema = score('Stress', 'calm', 'very stressed')

export const CheckinSchema = Type.Object(
  {
    id: UuidSchema,
    timestamp: DateTimeSchema,
    mood: MoodSchema,
    energy: Type.Union([EnergySchema, Type.Null()]),
    stress: Type.Union([StressSchema, Type.Null()]),
    tags: TagsSchema,
    note: Type.Union([NoteSchema, Type.Null()]),
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const CheckinCreateSchema = Type.Object(
  {
    timestamp: Type.Optional(
      DateTimeWindowSchema(WINDOWS.journal, {
        description: 'When the user felt this; default now. Not in the future (5 minutes of clock skew tolerated).',
      }),
    ),
    mood: MoodSchema,
    energy: Type.Optional(Type.Union([EnergySchema, Type.Null()])),
    stress: Type.Optional(Type.Union([StressSchema, Type.Null()])),
    tags: Type.Optional(TagsSchema),
    note: Type.Optional(Type.Union([NoteSchema, Type.Null()])),
  },
  { additionalProperties: false },
)

export const CheckinPatchSchema = Type.Object(
  {
    timestamp: Type.Optional(DateTimeSchema),
    mood: Type.Optional(MoodSchema),
    energy: Type.Optional(Type.Union([EnergySchema, Type.Null()])),
    stress: Type.Optional(Type.Union([StressSchema, Type.Null()])),
    tags: Type.Optional(TagsSchema),
    note: Type.Optional(Type.Union([NoteSchema, Type.Null()])),
  },
  { additionalProperties: false, description: 'Only the fields given change; null clears energy, stress or note.' },
)

export const CheckinListQuerySchema = Type.Composite(
  [
    PaginationQuerySchema,
    UpdatedSinceQuerySchema,
    Type.Object({
      from: Type.Optional(Type.String({ format: 'date-time', description: 'Check-ins at or after this time.' })),
      to: Type.Optional(Type.String({ format: 'date-time', description: 'Check-ins before this time.' })),
    }),
  ],
  { additionalProperties: false },
)

export const DailyMoodSchema = Type.Object({
  date: DateSchema,
  mood_avg: Type.Number(),
  checkin_count: Type.Integer(),
})

export type CheckinCreate = typeof CheckinCreateSchema.static
export type CheckinPatch = typeof CheckinPatchSchema.static
