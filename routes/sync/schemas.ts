import { type Static, Type } from '@sinclair/typebox'
import { CHANGE_ACTIONS, CHANGE_TYPES } from '../../plugins/changes.ts'

export const SyncQuerySchema = Type.Object(
  {
    cursor: Type.Optional(
      Type.String({
        pattern: '^[0-9]{1,15}$',
        description:
          'The `next_cursor` of the previous answer (or the `seq` of the last change already handled, e.g. from a webhook). Absent: from the oldest change still kept.',
      }),
    ),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    types: Type.Optional(
      Type.String({
        pattern: '^[a-z_]{1,32}(,[a-z_]{1,32}){0,15}$',
        description: `Comma-separated change types to answer (default: all): ${CHANGE_TYPES.join(', ')}.`,
      }),
    ),
  },
  { additionalProperties: false },
)
export type SyncQuery = Static<typeof SyncQuerySchema>

export const ChangeRangeSchema = Type.Object(
  {
    type: Type.Union([Type.String(), Type.Null()], { description: 'The sample type; null = every type.' }),
    from: Type.String({ format: 'date-time', description: 'First instant of the range (inclusive).' }),
    to: Type.String({
      format: 'date-time',
      description: 'Created: the last sample instant (inclusive). Deleted: the end of the deleted range (exclusive).',
    }),
    count: Type.Integer({
      description:
        'Created: the samples of this type the batch carried (re-sent ones included). Deleted: samples removed.',
    }),
  },
  { additionalProperties: false },
)

export const ChangeSchema = Type.Object(
  {
    seq: Type.Integer({
      description: "Position in the user's change log: increasing, no gaps between committed changes.",
    }),
    type: Type.Union(CHANGE_TYPES.map((t) => Type.Literal(t))),
    action: Type.Union(CHANGE_ACTIONS.map((a) => Type.Literal(a))),
    id: Type.Optional(Type.String({ description: 'The object that changed (every type except measurements).' })),
    range: Type.Optional(ChangeRangeSchema),
    at: Type.String({ format: 'date-time', description: 'When the change was made.' }),
  },
  { additionalProperties: false },
)

export const SyncPageSchema = Type.Object(
  {
    changes: Type.Array(ChangeSchema),
    next_cursor: Type.String({
      description: 'Never null: store it and pass it as `cursor` next time to get only what changed since.',
    }),
    has_more: Type.Boolean({
      description: 'True when more changes are ready now: ask again at once with next_cursor.',
    }),
  },
  { additionalProperties: false },
)

export const SyncPositionSchema = Type.Object(
  {
    cursor: Type.String({ description: 'The position of the latest change: sync from here after a full re-read.' }),
  },
  { additionalProperties: false },
)
