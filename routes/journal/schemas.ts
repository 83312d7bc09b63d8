import { Type } from '@sinclair/typebox'

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
