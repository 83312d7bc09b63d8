import { Type } from '@sinclair/typebox'
import { DateSchema, DateTimeSchema, PaginationQuerySchema } from '../common.ts'
import { NoteSchema, TagsSchema, UpdatedSinceQuerySchema } from '../journal/schemas.ts'

export const DayMoodSchema = Type.Integer({
  minimum: 1,
  maximum: 5,
  description: 'Mood of the day: 1 (very bad) … 5 (very good).',
})
export const DayRatingSchema = Type.Integer({
  minimum: 1,
  maximum: 10,
  description: 'How the day went overall: 1 (worst) … 10 (best).',
})

export const DayFeedbackSchema = Type.Object(
  {
    date: DateSchema,
    mood: Type.Union([DayMoodSchema, Type.Null()]),
    rating: Type.Union([DayRatingSchema, Type.Null()]),
    note: Type.Union([NoteSchema, Type.Null()]),
    tags: TagsSchema,
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const DayFeedbackBodySchema = Type.Object(
  {
    mood: Type.Optional(Type.Union([DayMoodSchema, Type.Null()])),
    rating: Type.Optional(Type.Union([DayRatingSchema, Type.Null()])),
    note: Type.Optional(Type.Union([NoteSchema, Type.Null()])),
    tags: Type.Optional(TagsSchema),
  },
  {
    additionalProperties: false,
    description:
      'The whole entry: a field left out is stored as null (tags as []). At least one of mood, rating, note.',
  },
)

export const DateParamsSchema = Type.Object({ date: DateSchema }, { additionalProperties: false })

export const DayFeedbackListQuerySchema = Type.Composite(
  [
    PaginationQuerySchema,
    UpdatedSinceQuerySchema,
    Type.Object({
      from: Type.Optional(Type.String({ format: 'date', description: 'First day, inclusive.' })),
      to: Type.Optional(Type.String({ format: 'date', description: 'Last day, inclusive.' })),
    }),
  ],
  { additionalProperties: false },
)

export type DayFeedbackBody = typeof DayFeedbackBodySchema.static
