import { Type } from '@sinclair/typebox'
import type { Db } from '../../db/client.ts'
import { type SessionFamily, sessionReadRoutes, sessionWrapperRoutes } from '../session-wrapper/index.ts'
import { exportSessionRows } from '../session-wrapper/repository.ts'

export const ACTIVITY_KINDS = [
  'walk',
  'run',
  'cycle',
  'swim',
  'hike',
  'workout',
  'strength',
  'yoga',
  'pilates',
  'dance',
  'sport',
  'meditation',
  'breathing',
  'other',
] as const

export const activityFamily: SessionFamily = {
  family: 'activity',
  tag: 'activity',
  path: '/activities',
  noun: 'activity',
  plural: 'activities',
  kinds: ACTIVITY_KINDS,
  kindDescription: `What the user did: ${ACTIVITY_KINDS.map((k) => `\`${k}\``).join(', ')}.`,
  about: 'An activity is a timed session of movement or practice (walk, run, yoga, meditation …).',
  extraFields: [
    {
      name: 'perceived_exertion',
      column: 'perceivedExertion',
      schema: Type.Union([
        Type.Integer({
          minimum: 0,
          maximum: 10,
          description: 'How hard it felt, Borg CR10 scale: 0 (nothing at all) … 10 (maximal).',
        }),
        Type.Null(),
      ]),
    },
  ],
}

/** Activities: the sessions wrapper registered for the activity family. */
export default sessionWrapperRoutes(activityFamily)

/** The read-only activity routes, also registered for shared owners (app.ts). */
export const activityReadRoutes = sessionReadRoutes(activityFamily)

/** Every activity of the user, oldest first, for the account export. */
export function exportRows(db: Db, userId: string) {
  return exportSessionRows(db, userId, activityFamily)
}
