import { type TProperties, type TSchema, Type } from '@sinclair/typebox'
import { DateTimeSchema, DateTimeWindowSchema, PaginationQuerySchema, UuidSchema, WINDOWS } from '../common.ts'
import { NoteSchema, UpdatedSinceQuerySchema } from '../journal/schemas.ts'
import type { SessionFamily } from './family.ts'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])

/** The schemas of one family's routes, built from its config. */
export function sessionSchemas(f: SessionFamily) {
  const extras = (optional: boolean): TProperties =>
    Object.fromEntries(f.extraFields.map((x) => [x.name, optional ? Type.Optional(x.schema) : x.schema]))
  const Kind = Type.Union(
    f.kinds.map((k) => Type.Literal(k)),
    { description: f.kindDescription },
  )
  const StartedAt = DateTimeWindowSchema(WINDOWS.journal, {
    description: 'Default now. Not in the future (5 minutes of clock skew tolerated).',
  })
  const EndedAt = DateTimeWindowSchema(WINDOWS.journal, {
    description: 'Not before started_at and not in the future (5 minutes of clock skew tolerated).',
  })

  const Session = Type.Object(
    {
      id: UuidSchema,
      kind: Type.String({ description: f.kindDescription }),
      started_at: DateTimeSchema,
      ended_at: nullable(DateTimeSchema),
      running: Type.Boolean({ description: 'True until the session is ended (ended_at is null).' }),
      notes: nullable(NoteSchema),
      ...extras(false),
      created_at: DateTimeSchema,
      updated_at: DateTimeSchema,
    },
    { additionalProperties: false },
  )

  const nullableNumber = (description: string) => Type.Union([Type.Number(), Type.Null()], { description })
  const Summary = Type.Object(
    {
      duration_s: Type.Integer({
        minimum: 0,
        description: 'Length of the window in whole seconds: started_at to ended_at, or to now while running.',
      }),
      heart_rate: Type.Object(
        {
          avg: nullableNumber('bpm, mean of the samples; null without samples.'),
          max: nullableNumber('bpm; null without samples.'),
          min: nullableNumber('bpm; null without samples.'),
          count: Type.Integer({ minimum: 0, description: 'Heart rate samples in the window.' }),
        },
        { additionalProperties: false },
      ),
      steps: Type.Number({ minimum: 0, description: 'Total steps in the window; 0 without samples.' }),
      active_energy: nullableNumber('kcal, total active energy in the window; null without samples.'),
    },
    {
      additionalProperties: false,
      description:
        "The user's own measurements inside the window [started_at, ended_at) — for a running session [started_at, now) — read from every device. Only the single GET carries it; lists, start, end and edit answers do not.",
    },
  )

  const SessionDetail = Type.Object(
    {
      ...Session.properties,
      summary: Type.Union([Summary, Type.Null()], {
        description: 'null only on a shared read whose share lacks the `measurement` scope.',
      }),
    },
    { additionalProperties: false, description: `One ${f.noun} with the summary of its measurements.` },
  )

  const Start = Type.Object(
    {
      kind: Kind,
      started_at: Type.Optional(StartedAt),
      ended_at: Type.Optional(nullable(EndedAt)),
      notes: Type.Optional(nullable(NoteSchema)),
      ...extras(true),
    },
    { additionalProperties: false },
  )

  const End = Type.Object(
    {
      ended_at: Type.Optional(Type.String({ format: 'date-time', description: 'Default now.' })),
      notes: Type.Optional(nullable(NoteSchema)),
      ...extras(true),
    },
    { additionalProperties: false },
  )

  const Patch = Type.Object(
    {
      kind: Type.Optional(Kind),
      started_at: Type.Optional(DateTimeSchema),
      ended_at: Type.Optional(
        nullable(Type.String({ format: 'date-time', description: 'null makes the session running again.' })),
      ),
      notes: Type.Optional(nullable(NoteSchema)),
      ...extras(true),
    },
    { additionalProperties: false, description: 'Only the fields given change; null clears a field.' },
  )

  const ListQuery = Type.Object(
    {
      ...PaginationQuerySchema.properties,
      ...UpdatedSinceQuerySchema.properties,
      from: Type.Optional(Type.String({ format: 'date-time', description: 'Sessions started at or after this time.' })),
      to: Type.Optional(Type.String({ format: 'date-time', description: 'Sessions started before this time.' })),
      kind: Type.Optional(Kind),
      running: Type.Optional(Type.Boolean({ description: 'true: only the running session; false: only ended ones.' })),
    },
    { additionalProperties: false },
  )

  return { Session, SessionDetail, Start, End, Patch, ListQuery }
}

/** The bodies as the repository sees them: the shared fields, and the family's extras by JSON name. */
export interface SessionInput {
  kind?: string
  started_at?: string
  ended_at?: string | null
  notes?: string | null
  [extra: string]: unknown
}
