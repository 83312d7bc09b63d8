import { and, desc, eq, getTableColumns, gt, gte, lt, lte, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { dayFeedback } from '../../db/schema/index.ts'
import type { DayFeedbackBody } from './schemas.ts'

export type DayFeedbackRow = typeof dayFeedback.$inferSelect

export function toDayFeedbackJson(row: DayFeedbackRow) {
  return {
    date: row.day,
    mood: row.mood,
    rating: row.rating,
    note: row.note,
    tags: row.tags,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export interface DayRange {
  from?: string
  to?: string
  limit: number
  /** The last day of the previous page (lists run newest first). */
  before?: string
  /** Only entries created or changed at or after this instant. */
  updatedSince?: Date
}

/** Day feedback; every function takes the owner's user id, so sharing can reuse them as they are. */
export function createDayFeedbackRepository(db: Db) {
  return {
    /** Creates or replaces the entry of that day; `created` tells which. */
    async put(
      userId: string,
      day: string,
      body: DayFeedbackBody,
      tx?: DbOrTx,
    ): Promise<{ row: DayFeedbackRow; created: boolean }> {
      const values = {
        mood: body.mood ?? null,
        rating: body.rating ?? null,
        note: body.note ?? null,
        tags: body.tags ?? [],
      }
      const [res] = await (tx ?? db)
        .insert(dayFeedback)
        .values({ userId, day, ...values })
        .onConflictDoUpdate({
          target: [dayFeedback.userId, dayFeedback.day],
          set: { ...values, updatedAt: new Date() },
        })
        // xmax is 0 only on a freshly inserted tuple: the one way to tell insert from update in one statement.
        .returning({ ...getTableColumns(dayFeedback), created: sql<boolean>`(xmax = 0)` })
      const { created, ...row } = res
      return { row, created }
    },

    async get(ownerId: string, day: string, tx?: DbOrTx): Promise<DayFeedbackRow | null> {
      const [row] = await (tx ?? db)
        .select()
        .from(dayFeedback)
        .where(and(eq(dayFeedback.userId, ownerId), eq(dayFeedback.day, day)))
        .limit(1)
      return row ?? null
    },

    async remove(ownerId: string, day: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(dayFeedback)
        .where(and(eq(dayFeedback.userId, ownerId), eq(dayFeedback.day, day)))
        .returning({ day: dayFeedback.day })
      return rows.length > 0
    },

    /** The days from `fromDate` to `toDate` (inclusive) that have an entry, with its mood. For insights and statistics. */
    async moods(
      userId: string,
      fromDate: string,
      toDate: string,
      tx?: DbOrTx,
    ): Promise<Array<{ date: string; mood: number | null }>> {
      return (tx ?? db)
        .select({ date: dayFeedback.day, mood: dayFeedback.mood })
        .from(dayFeedback)
        .where(and(eq(dayFeedback.userId, userId), gte(dayFeedback.day, fromDate), lte(dayFeedback.day, toDate)))
        .orderBy(dayFeedback.day)
    },

    /** Newest day first, keyset on the day; `from` and `to` inclusive. */
    async page(ownerId: string, range: DayRange, tx?: DbOrTx): Promise<DayFeedbackRow[]> {
      return (tx ?? db)
        .select()
        .from(dayFeedback)
        .where(
          and(
            eq(dayFeedback.userId, ownerId),
            range.from ? gte(dayFeedback.day, range.from) : undefined,
            range.to ? lte(dayFeedback.day, range.to) : undefined,
            range.before ? lt(dayFeedback.day, range.before) : undefined,
            range.updatedSince ? gte(dayFeedback.updatedAt, range.updatedSince) : undefined,
          ),
        )
        .orderBy(desc(dayFeedback.day))
        .limit(range.limit)
    },
  }
}

export type DayFeedbackRepository = ReturnType<typeof createDayFeedbackRepository>

/** Every day-feedback entry of the user, oldest first, for the account export. */
export async function* exportRows(db: DbOrTx, userId: string) {
  let after: string | undefined
  for (;;) {
    const rows = await db
      .select()
      .from(dayFeedback)
      .where(and(eq(dayFeedback.userId, userId), after ? gt(dayFeedback.day, after) : undefined))
      .orderBy(dayFeedback.day)
      .limit(500)
    for (const row of rows) yield toDayFeedbackJson(row)
    if (rows.length < 500) return
    after = rows[rows.length - 1].day
  }
}
