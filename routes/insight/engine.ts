import type { Db, DbOrTx } from '../../db/client.ts'
import { todayIn } from '../journal/zone.ts'
import { createUserRepository } from '../user/repository.ts'
import { createInsightRepository } from './repository.ts'
import { DEFAULT_RULES, type InsightRule } from './rules.ts'

/**
 * Runs every rule for one user and stores what is new. Idempotent: the unique key (user, kind, period)
 * drops a repeated insight, also when two runs race.
 */
/** Told in the storing transaction which insights of a user were stored (new or recomputed): the change log. */
export type InsightsStored = (
  tx: DbOrTx,
  userId: string,
  rows: Array<{ id: string; inserted: boolean }>,
) => Promise<unknown>

export function createInsightEngine(db: Db, rules: InsightRule[] = DEFAULT_RULES, onStored?: InsightsStored) {
  const repo = createInsightRepository(db)
  const users = createUserRepository(db)
  return {
    rules,
    /** Answers how many insights were added. */
    async generate(userId: string, now = new Date()): Promise<number> {
      const timeZone = await users.timeZone(userId)
      const ctx = { db, userId, timeZone, today: todayIn(timeZone, now) }
      const drafts = (await Promise.all(rules.map((r) => r.evaluate(ctx)))).flat()
      if (!onStored) return repo.insertDrafts(userId, drafts)
      return db.transaction((tx) => repo.insertDrafts(userId, drafts, tx, (rows) => onStored(tx, userId, rows)))
    },
  }
}

export type InsightEngine = ReturnType<typeof createInsightEngine>
