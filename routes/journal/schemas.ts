import { Type } from '@sinclair/typebox'
import { instantDate } from '../../plugins/date-time-format.ts'

/** Tags the apps offer as choices; any other tag of the same shape is accepted as the user's own. */
export const KNOWN_TAGS = [
  'work',
  'family',
  'friends',
  'partner',
  'exercise',
  'outdoors',
  'sleep',
  'food',
  'caffeine',
  'alcohol',
  'health',
  'illness',
  'medication',
  'travel',
  'weather',
  'social',
  'alone',
  'relaxation',
  'hobby',
  'screen_time',
] as const

export const TAG_MAX = 10
export const NOTE_MAX = 2000

export const TagSchema = Type.String({
  minLength: 1,
  maxLength: 32,
  pattern: '^[a-z0-9]+(?:[_-][a-z0-9]+)*$',
  examples: ['work'],
})

export const TagsSchema = Type.Array(TagSchema, {
  maxItems: TAG_MAX,
  uniqueItems: true,
  description: `At most ${TAG_MAX} distinct tags, each 1..32 characters of \`a-z 0-9\` separated by single \`_\` or \`-\`. Known tags: ${KNOWN_TAGS.map((t) => `\`${t}\``).join(', ')}; any other tag of that shape is the user's own.`,
})

export const NoteSchema = Type.String({ maxLength: NOTE_MAX, description: `At most ${NOTE_MAX} characters.` })

/**
 * `updated_since` of the journal list routes: only what was created or changed at or after that instant
 * (deletions are not listed: `GET /v1/sync` has them as tombstones).
 */
export const UpdatedSinceQuerySchema = Type.Object({
  updated_since: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'Only entries created or changed at or after this instant (their `updated_at`). Deletions are not listed: `GET /v1/sync` answers them as tombstones.',
    }),
  ),
})

/** The instant of `updated_since`, when given. */
export const updatedSince = (q: { updated_since?: string }) =>
  q.updated_since === undefined ? undefined : instantDate(q.updated_since)
