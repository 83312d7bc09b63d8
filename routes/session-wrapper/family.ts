import type { TSchema } from '@sinclair/typebox'
import type { journalSessions } from '../../db/schema/index.ts'

type SessionColumns = typeof journalSessions.$inferSelect

/** A field only one family has: its JSON name, its column, and its (nullable) schema. */
export interface ExtraField {
  name: string
  column: keyof Pick<SessionColumns, 'perceivedExertion' | 'outcomeRating' | 'outcomeNote'>
  schema: TSchema
}

/** What makes a family of sessions (activities, intentions) different; the rest is shared. */
export interface SessionFamily {
  family: SessionColumns['family']
  /** OpenAPI tag, also the noun in texts. */
  tag: string
  /** Path under the prefix, e.g. `/activities`. */
  path: string
  /** Singular noun for summaries, e.g. `activity`. */
  noun: string
  /** Plural noun, e.g. `activities`. */
  plural: string
  kinds: readonly string[]
  kindDescription: string
  /** Said in the description of the start route. */
  about: string
  extraFields: ExtraField[]
}
