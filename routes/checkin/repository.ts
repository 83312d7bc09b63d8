import { and, asc, desc, eq, gte, lt, sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter, keysetRows } from '../../db/keyset.ts'
import { checkins } from '../../db/schema/index.ts'
import { instantDate } from '../../plugins/date-time-format.ts'
import type { CheckinCreate, CheckinPatch } from './schemas.ts'

export type CheckinRow = typeof checkins.$inferSelect

export function toCheckinJson(row: CheckinRow) {
  return {
    id: row.id,
    timestamp: row.at.toISOString(),
    mood: row.mood,
    energy: row.energy,
    stress: row.stress,
    tags: row.tags,
    note: row.note,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export interface DailyMood {
  date: string
  mood_avg: number
  checkin_count: number
}

export interface CheckinRange {
  from?: Date
  to?: Date
  limit: number
  after?: { at: Date; id: string }
  /** Only rows created or changed at or after this instant. */
  updatedSince?: Date
  /** `desc` (newest first) for lists, `asc` for the export. */
  order?: 'asc' | 'desc'
}

/** Check-ins; every function takes the owner's user id, so sharing can reuse them as they are. */
export function createCheckinRepository(db: Db) {
  return {
    async create(userId: string, body: CheckinCreate, tx?: DbOrTx): Promise<CheckinRow> {
      const [row] = await (tx ?? db)
        .insert(checkins)
        .values({
          userId,
          at: body.timestamp ? instantDate(body.timestamp) : new Date(),
          mood: body.mood,
          energy: body.energy ?? null,
          stress: body.stress ?? null,
          tags: body.tags ?? [],
          note: body.note ?? null,
        })
        .returning()
      return row
    },

    async get(ownerId: string, id: string, tx?: DbOrTx): Promise<CheckinRow | null> {
      const [row] = await (tx ?? db)
        .select()
        .from(checkins)
        .where(and(eq(checkins.id, id), eq(checkins.userId, ownerId)))
        .limit(1)
      return row ?? null
    },

    async update(ownerId: string, id: string, patch: CheckinPatch, tx?: DbOrTx): Promise<CheckinRow | null> {
      const [row] = await (tx ?? db)
        .update(checkins)
        .set({
          at: patch.timestamp === undefined ? undefined : instantDate(patch.timestamp),
          mood: patch.mood,
          energy: patch.energy,
          stress: patch.stress,
          tags: patch.tags,
          note: patch.note,
          updatedAt: new Date(),
        })
        .where(and(eq(checkins.id, id), eq(checkins.userId, ownerId)))
        .returning()
      return row ?? null
    },

    async remove(ownerId: string, id: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(checkins)
        .where(and(eq(checkins.id, id), eq(checkins.userId, ownerId)))
        .returning({ id: checkins.id })
      return rows.length > 0
    },

    /** Newest first (or `order: 'asc'`, the export), keyset on (at, id); `from` inclusive, `to` exclusive. */
    async page(ownerId: string, range: CheckinRange, tx?: DbOrTx): Promise<CheckinRow[]> {
      const { from, to, after, limit, order = 'desc', updatedSince } = range
      const by = order === 'desc' ? desc : asc
      return (tx ?? db)
        .select()
        .from(checkins)
        .where(
          and(
            eq(checkins.userId, ownerId),
            from ? gte(checkins.at, from) : undefined,
            to ? lt(checkins.at, to) : undefined,
            updatedSince ? gte(checkins.updatedAt, updatedSince) : undefined,
            keysetAfter(checkins.at, checkins.id, after, order),
          ),
        )
        .orderBy(by(checkins.at), by(checkins.id))
        .limit(limit)
    },

    /**
     * Per calendar day of `timeZone`, from `fromDate` to `toDate` inclusive: the average check-in mood
     * and how many check-ins there were. Days without check-ins are absent. For statistics and insights.
     */
    async dailyMood(
      userId: string,
      fromDate: string,
      toDate: string,
      timeZone: string,
      tx?: DbOrTx,
    ): Promise<DailyMood[]> {
      const rows = await queryRows<{ date: string; mood_avg: string | number; checkin_count: number }>(
        tx ?? db,
        sql`select to_char((${checkins.at} at time zone ${timeZone})::date, 'YYYY-MM-DD') as date,
                   avg(${checkins.mood})::float8 as mood_avg,
                   count(*)::int as checkin_count
              from ${checkins}
             where ${checkins.userId} = ${userId}
               and ${checkins.at} >= (${fromDate}::date)::timestamp at time zone ${timeZone}
               and ${checkins.at} < ((${toDate}::date + 1)::timestamp at time zone ${timeZone})
             group by 1
             order by 1`,
      )
      return rows.map((r) => ({ date: r.date, mood_avg: Number(r.mood_avg), checkin_count: r.checkin_count }))
    },
  }
}

export type CheckinRepository = ReturnType<typeof createCheckinRepository>

/** Every check-in of the user, oldest first, for the account export. */
export function exportRows(db: Db, userId: string) {
  const repo = createCheckinRepository(db)
  return keysetRows(
    (after: KeysetAfter | undefined, batch: number) => repo.page(userId, { after, limit: batch, order: 'asc' }),
    (r) => ({ at: r.at, id: r.id }),
    toCheckinJson,
    500,
  )
}
