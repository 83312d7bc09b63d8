import type { Db } from '../../db/client.ts'
import { todayIn } from '../journal/zone.ts'
import { createUserRepository } from '../user/repository.ts'
import { createInsightRepository } from './repository.ts'
import { DEFAULT_RULES, type InsightRule } from './rules.ts'

/**
 * Runs every rule for one user and stores what is new. Idempotent: the unique key (user, kind, period)
 * drops a repeated insight, also when two runs race.
 */
export function createInsightEngine(db: Db, rules: InsightRule[] = DEFAULT_RULES) {
  const repo = createInsightRepository(db)
  const users = createUserRepository(db)
  return {
    rules,
    /** Answers how many insights were added. */
    async generate(userId: string, now = new Date()): Promise<number> {
      const timeZone = await users.timeZone(userId)
      const ctx = { db, userId, timeZone, today: todayIn(timeZone, now) }
      const drafts = (await Promise.all(rules.map((r) => r.evaluate(ctx)))).flat()
      return repo.insertDrafts(userId, drafts)
    },
  }
}

export type InsightEngine = ReturnType<typeof createInsightEngine>
