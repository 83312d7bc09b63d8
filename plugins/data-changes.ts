import fp from 'fastify-plugin'
import type { DbOrTx } from '../db/client.ts'

/**
 * A change of a user's data that derived data may depend on: the kind of data (`measurement:<type>`,
 * `measurement:*` for every type, `checkin`, `day_feedback`, `activity`, `intention`) and the span it
 * touched — instants, or local calendar days (`YYYY-MM-DD`) for data kept by day.
 */
export interface DataChange {
  userId: string
  source: string
  from: Date | string
  to: Date | string
}

export type DataChangeListener = (tx: DbOrTx, change: DataChange) => Promise<void>

export interface DataChanges {
  /** A domain that derives data (insights) listens; registered once, at start. */
  listen(listener: DataChangeListener): void
  /** A domain that changed data tells, inside the transaction of the change, so both commit or neither. */
  changed(tx: DbOrTx, change: DataChange): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    dataChanges: DataChanges
  }
}

/**
 * In-process notifications of data changes, so that a domain holding derived data hears of edits and
 * deletions in other domains without either importing the other. Listeners run in the changer's
 * transaction: what they write is as durable as the change itself, in every process.
 */
export default fp(
  async function dataChangesPlugin(app) {
    const listeners: DataChangeListener[] = []
    app.decorate('dataChanges', {
      listen(listener) {
        listeners.push(listener)
      },
      async changed(tx, change) {
        for (const listener of listeners) await listener(tx, change)
      },
    } satisfies DataChanges)
  },
  { name: 'data-changes' },
)
