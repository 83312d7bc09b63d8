import { Type } from '@sinclair/typebox'
import { DateSchema, DateTimeSchema, PaginationQuerySchema, UuidSchema } from '../common.ts'
import { UpdatedSinceQuerySchema } from '../journal/schemas.ts'
import { DEFAULT_RULES } from './rules.ts'

export const COMMENT_MAX = 1000
export const REFLECTION_MAX = 5000
export const REFLECTIONS_PER_INSIGHT = 100

const RULES_TEXT = DEFAULT_RULES.map((r) => `\`${r.kind}\`: ${r.description}`).join(' ')

export const FeedbackSchema = Type.Object(
  {
    helpful: Type.Boolean(),
    comment: Type.Union([Type.String({ maxLength: COMMENT_MAX }), Type.Null()]),
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const InsightSchema = Type.Object(
  {
    id: UuidSchema,
    kind: Type.String({ description: `The rule that produced it. ${RULES_TEXT}` }),
    period_start: DateSchema,
    period_end: DateSchema,
    title: Type.String(),
    body: Type.String(),
    data: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]), {
      description: 'The numbers the insight is based on, by name.',
    }),
    created_at: DateTimeSchema,
    feedback: Type.Union([FeedbackSchema, Type.Null()], { description: "The user's feedback, null until given." }),
  },
  { additionalProperties: false },
)

/** An insight as a viewer of a share sees it: without the owner's feedback. */
export const SharedInsightSchema = Type.Omit(InsightSchema, ['feedback'], { additionalProperties: false })

export const InsightListQuerySchema = Type.Composite(
  [
    PaginationQuerySchema,
    UpdatedSinceQuerySchema,
    Type.Object({ kind: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }),
  ],
  { additionalProperties: false },
)

export const FeedbackBodySchema = Type.Object(
  {
    helpful: Type.Boolean(),
    comment: Type.Optional(
      Type.Union([
        Type.String({ maxLength: COMMENT_MAX, description: `At most ${COMMENT_MAX} characters.` }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
)

export const ReflectionSchema = Type.Object(
  {
    id: UuidSchema,
    insight_id: UuidSchema,
    text: Type.String(),
    created_at: DateTimeSchema,
    updated_at: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const ReflectionBodySchema = Type.Object(
  {
    text: Type.String({
      minLength: 1,
      maxLength: REFLECTION_MAX,
      pattern: '\\S',
      description: `1..${REFLECTION_MAX} characters, not only white space.`,
    }),
  },
  { additionalProperties: false },
)

export const ReflectionParamsSchema = Type.Object(
  { id: UuidSchema, reflection_id: UuidSchema },
  { additionalProperties: false },
)

export const ReflectionListQuerySchema = Type.Composite([PaginationQuerySchema, UpdatedSinceQuerySchema], {
  additionalProperties: false,
})
