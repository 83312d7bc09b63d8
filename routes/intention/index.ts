import { Type } from '@sinclair/typebox'
import type { Db } from '../../db/client.ts'
import { NoteSchema } from '../journal/schemas.ts'
import { type SessionFamily, sessionReadRoutes, sessionWrapperRoutes } from '../session-wrapper/index.ts'
import { exportSessionRows } from '../session-wrapper/repository.ts'

export const INTENTION_KINDS = [
  'focus',
  'relax',
  'sleep_better',
  'move_more',
  'reduce_stress',
  'be_present',
  'connect',
  'create',
  'learn',
  'other',
] as const

export const intentionFamily: SessionFamily = {
  family: 'intention',
  tag: 'intention',
  path: '/intentions',
  noun: 'intention',
  plural: 'intentions',
  kinds: INTENTION_KINDS,
  kindDescription: `What the user set out to do: ${INTENTION_KINDS.map((k) => `\`${k}\``).join(', ')}.`,
  about:
    'An intention is what the user sets out to do for a while (focus, relax, sleep better …); when it ends, outcome_rating and outcome_note say how it went.',
  extraFields: [
    {
      name: 'outcome_rating',
      column: 'outcomeRating',
      schema: Type.Union([
        Type.Integer({ minimum: 1, maximum: 5, description: 'How it went: 1 (not at all) … 5 (fully).' }),
        Type.Null(),
      ]),
    },
    {
      name: 'outcome_note',
      column: 'outcomeNote',
      schema: Type.Union([NoteSchema, Type.Null()], { description: 'How it went, in words.' }),
    },
  ],
}

/** Intentions: the sessions wrapper registered for the intention family. */
export default sessionWrapperRoutes(intentionFamily)

/** The read-only intention routes, also registered for shared owners (app.ts). */
export const intentionReadRoutes = sessionReadRoutes(intentionFamily)

/** Every intention of the user, oldest first, for the account export. */
export function exportRows(db: Db, userId: string) {
  return exportSessionRows(db, userId, intentionFamily)
}
