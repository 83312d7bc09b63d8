import { and, asc, desc, eq, gte, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter, keysetRows } from '../../db/keyset.ts'
import { journalSessions } from '../../db/schema/index.ts'
import { createMeasurementRepository } from '../measurement/repository.ts'
import type { SessionFamily } from './family.ts'

export type SessionRow = typeof journalSessions.$inferSelect
export type NewSessionValues = Omit<typeof journalSessions.$inferInsert, 'id' | 'userId' | 'family'>
export type SessionChanges = Partial<NewSessionValues>

/** The name of the partial unique index behind "one running session per family". */
export const ONE_RUNNING_CONSTRAINT = 'journal_sessions_one_running'

export function toSessionJson(f: SessionFamily, row: SessionRow) {
  const extras: Record<string, unknown> = {}
  for (const x of f.extraFields) extras[x.name] = row[x.column]
  return {
    id: row.id,
    kind: row.kind,
    started_at: row.startedAt.toISOString(),
    ended_at: row.endedAt ? row.endedAt.toISOString() : null,
    running: row.endedAt === null,
    notes: row.notes,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    ...extras,
  }
}

/** The owner's measurements inside a session's window: the `summary` of the single GET. */
export interface SessionSummary {
  duration_s: number
  heart_rate: { avg: number | null; max: number | null; min: number | null; count: number }
  steps: number
  active_energy: number | null
}

/** A session with its measurement summary. */
export function toSessionDetailJson(f: SessionFamily, row: SessionRow & { summary: SessionSummary }) {
  return { ...toSessionJson(f, row), summary: row.summary }
}

export interface SessionRange {
  from?: Date
  to?: Date
  kind?: string
  running?: boolean
  limit: number
  after?: { at: Date; id: string }
  /** Only sessions created or changed at or after this instant. */
  updatedSince?: Date
  /** `desc` (newest start first) for lists, `asc` for the export. */
  order?: 'asc' | 'desc'
}

/** One family's sessions; every function takes the owner's user id, so sharing can reuse them as they are. */
export function createJournalSessionRepository(db: Db, family: SessionFamily['family']) {
  const measurements = createMeasurementRepository(db)
  const mine = (ownerId: string, id: string) =>
    and(eq(journalSessions.id, id), eq(journalSessions.userId, ownerId), eq(journalSessions.family, family))

  async function get(ownerId: string, id: string, tx?: DbOrTx): Promise<SessionRow | null> {
    const [row] = await (tx ?? db).select().from(journalSessions).where(mine(ownerId, id)).limit(1)
    return row ?? null
  }

  return {
    /** Throws a unique violation of ONE_RUNNING_CONSTRAINT when it would be a second running session. */
    async create(userId: string, values: NewSessionValues, tx?: DbOrTx): Promise<SessionRow> {
      const [row] = await (tx ?? db)
        .insert(journalSessions)
        .values({ ...values, userId, family })
        .returning()
      return row
    },

    get,

    /**
     * The session with a summary of the owner's samples in its window [started_at, ended_at), a running
     * session's window ending `now`. Only the owner's samples count: the window is read by owner id.
     */
    async getWithSummary(
      ownerId: string,
      id: string,
      now = new Date(),
    ): Promise<(SessionRow & { summary: SessionSummary }) | null> {
      const row = await get(ownerId, id)
      if (!row) return null
      const from = row.startedAt
      // A running session started a little ahead (clock skew) has an empty window, not a negative one.
      const to = new Date(Math.max(from.getTime(), (row.endedAt ?? now).getTime()))
      const stats = await measurements.windowSummary(ownerId, from, to)
      const hr = stats.heart_rate
      return {
        ...row,
        summary: {
          duration_s: Math.floor((to.getTime() - from.getTime()) / 1000),
          heart_rate: hr
            ? { avg: hr.avg, max: hr.max, min: hr.min, count: hr.count }
            : { avg: null, max: null, min: null, count: 0 },
          steps: stats.steps?.sum ?? 0,
          active_energy: stats.active_energy?.sum ?? null,
        },
      }
    },

    /** The row locked until the transaction ends: edits read, check and write without a race. */
    async getForUpdate(ownerId: string, id: string, tx: DbOrTx): Promise<SessionRow | null> {
      const [row] = await tx.select().from(journalSessions).where(mine(ownerId, id)).for('update').limit(1)
      return row ?? null
    },

    async update(ownerId: string, id: string, changes: SessionChanges, tx?: DbOrTx): Promise<SessionRow | null> {
      const [row] = await (tx ?? db)
        .update(journalSessions)
        .set({ ...changes, updatedAt: new Date() })
        .where(mine(ownerId, id))
        .returning()
      return row ?? null
    },

    async remove(ownerId: string, id: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(journalSessions)
        .where(mine(ownerId, id))
        .returning({ id: journalSessions.id })
      return rows.length > 0
    },

    /** Newest start first (or `order: 'asc'`, the export), keyset on (started_at, id); `from` inclusive, `to` exclusive. */
    async page(ownerId: string, range: SessionRange, tx?: DbOrTx): Promise<SessionRow[]> {
      const { from, to, kind, running, after, limit, order = 'desc', updatedSince } = range
      const by = order === 'desc' ? desc : asc
      return (tx ?? db)
        .select()
        .from(journalSessions)
        .where(
          and(
            eq(journalSessions.userId, ownerId),
            eq(journalSessions.family, family),
            from ? gte(journalSessions.startedAt, from) : undefined,
            to ? lt(journalSessions.startedAt, to) : undefined,
            kind ? eq(journalSessions.kind, kind) : undefined,
            updatedSince ? gte(journalSessions.updatedAt, updatedSince) : undefined,
            running === undefined
              ? undefined
              : running
                ? isNull(journalSessions.endedAt)
                : isNotNull(journalSessions.endedAt),
            keysetAfter(journalSessions.startedAt, journalSessions.id, after, order),
          ),
        )
        .orderBy(by(journalSessions.startedAt), by(journalSessions.id))
        .limit(limit)
    },

    /** Calendar days of `timeZone` (inclusive range) on which a session of this family started. For insights. */
    async daysWithSessions(
      userId: string,
      fromDate: string,
      toDate: string,
      timeZone: string,
      tx?: DbOrTx,
    ): Promise<Array<{ date: string; sessions: number }>> {
      return queryRows(
        tx ?? db,
        sql`select to_char((${journalSessions.startedAt} at time zone ${timeZone})::date, 'YYYY-MM-DD') as date,
                   count(*)::int as sessions
              from ${journalSessions}
             where ${journalSessions.userId} = ${userId}
               and ${journalSessions.family} = ${family}
               and ${journalSessions.startedAt} >= (${fromDate}::date)::timestamp at time zone ${timeZone}
               and ${journalSessions.startedAt} < ((${toDate}::date + 1)::timestamp at time zone ${timeZone})
             group by 1
             order by 1`,
      )
    },
  }
}

export type JournalSessionRepository = ReturnType<typeof createJournalSessionRepository>

/** Every session of one family of the user, oldest first, for the account export. */
export function exportSessionRows(db: Db, userId: string, f: SessionFamily) {
  const repo = createJournalSessionRepository(db, f.family)
  return keysetRows(
    (after: KeysetAfter | undefined, batch: number) => repo.page(userId, { after, limit: batch, order: 'asc' }),
    (r) => ({ at: r.startedAt, id: r.id }),
    (r) => toSessionJson(f, r),
    500,
  )
}
