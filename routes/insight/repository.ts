import { and, asc, count, desc, eq, gte, isNull, lte, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { insightFeedback, insightReflections, insights } from '../../db/schema/index.ts'
import type { InsightDraft } from './rules.ts'

export type InsightRow = typeof insights.$inferSelect
export type FeedbackRow = typeof insightFeedback.$inferSelect
export type ReflectionRow = typeof insightReflections.$inferSelect

export function toFeedbackJson(row: FeedbackRow) {
  return {
    helpful: row.helpful,
    comment: row.comment,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export function toInsightJson(row: InsightRow & { feedback: FeedbackRow | null }) {
  return {
    id: row.id,
    kind: row.kind,
    period_start: row.periodStart,
    period_end: row.periodEnd,
    title: row.title,
    body: row.body,
    data: row.data,
    created_at: row.createdAt.toISOString(),
    feedback: row.feedback ? toFeedbackJson(row.feedback) : null,
  }
}

export function toReflectionJson(row: ReflectionRow) {
  return {
    id: row.id,
    insight_id: row.insightId,
    text: row.text,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

type Keyset = { at: Date; id: string }

/** Insights with their feedback and reflections; every function takes the owner's user id. */
export function createInsightRepository(db: Db) {
  const withFeedback = (tx?: DbOrTx) =>
    (tx ?? db)
      .select({ insight: insights, feedback: insightFeedback })
      .from(insights)
      .leftJoin(insightFeedback, eq(insightFeedback.insightId, insights.id))

  return {
    /**
     * Stores the drafts not stored yet (same user, kind and period) and recomputes the stored ones in place
     * (same id, feedback and reflections kept): a withdrawn insight the rules still support comes back with
     * the numbers of the data as it now is. Answers how many were new.
     */
    async insertDrafts(
      userId: string,
      drafts: InsightDraft[],
      tx?: DbOrTx,
      /** Told, in `tx`, which insights were stored: new ones (`inserted`) and recomputed ones. */
      onStored?: (rows: Array<{ id: string; inserted: boolean }>) => Promise<unknown>,
    ): Promise<number> {
      if (drafts.length === 0) return 0
      const rows = await (tx ?? db)
        .insert(insights)
        .values(drafts.map((d) => ({ userId, ...d })))
        .onConflictDoUpdate({
          target: [insights.userId, insights.kind, insights.periodStart, insights.periodEnd],
          set: {
            title: sql`excluded.title`,
            body: sql`excluded.body`,
            data: sql`excluded.data`,
            sources: sql`excluded.sources`,
            sourceFrom: sql`excluded.source_from`,
            sourceTo: sql`excluded.source_to`,
            withdrawnAt: null,
            updatedAt: sql`now()`,
          },
          // Untouched when nothing changed: re-running the rules writes nothing.
          setWhere: sql`${insights.withdrawnAt} is not null or ${insights.data} is distinct from excluded.data
            or ${insights.body} is distinct from excluded.body or ${insights.sourceFrom} is distinct from excluded.source_from`,
        })
        .returning({ id: insights.id, inserted: sql<boolean>`xmax = 0` })
      if (onStored && rows.length > 0) await onStored(rows)
      return rows.filter((r) => r.inserted).length
    },

    /**
     * Withdraws the live insights of a user computed from `source` data on any local day in [fromDay, toDay]
     * (`measurement:*` matches every measurement type; an insight of unknown sources, `*`, matches all).
     * Answers their ids.
     */
    async withdrawDerivedFrom(
      userId: string,
      source: string,
      fromDay: string,
      toDay: string,
      tx: DbOrTx,
    ): Promise<string[]> {
      const matches =
        source === 'measurement:*'
          ? sql`exists (select 1 from unnest(${insights.sources}) s where s like 'measurement:%' or s = '*')`
          : sql`(${insights.sources} && array[${source}, '*']::text[])`
      const rows = await tx
        .update(insights)
        .set({ withdrawnAt: new Date() })
        .where(
          and(
            eq(insights.userId, userId),
            isNull(insights.withdrawnAt),
            lte(insights.sourceFrom, toDay),
            gte(insights.sourceTo, fromDay),
            matches,
          ),
        )
        .returning({ id: insights.id })
      return rows.map((r) => r.id)
    },

    async get(ownerId: string, id: string, tx?: DbOrTx) {
      const [row] = await withFeedback(tx)
        .where(and(eq(insights.id, id), eq(insights.userId, ownerId), isNull(insights.withdrawnAt)))
        .limit(1)
      return row ? { ...row.insight, feedback: row.feedback } : null
    },

    /** Whether the insight exists and is the owner's; locks it when inside a transaction that asks. */
    async exists(ownerId: string, id: string, tx?: DbOrTx, lock = false): Promise<boolean> {
      const q = (tx ?? db)
        .select({ id: insights.id })
        .from(insights)
        .where(and(eq(insights.id, id), eq(insights.userId, ownerId), isNull(insights.withdrawnAt)))
      const rows = lock ? await q.for('update').limit(1) : await q.limit(1)
      return rows.length > 0
    },

    /** Newest first, keyset on (created_at, id). */
    async page(
      ownerId: string,
      opts: { kind?: string; limit: number; after?: Keyset; updatedSince?: Date },
      tx?: DbOrTx,
    ) {
      const { kind, limit, after, updatedSince } = opts
      const rows = await withFeedback(tx)
        .where(
          and(
            eq(insights.userId, ownerId),
            isNull(insights.withdrawnAt),
            kind ? eq(insights.kind, kind) : undefined,
            updatedSince ? gte(insights.updatedAt, updatedSince) : undefined,
            keysetAfter(insights.createdAt, insights.id, after),
          ),
        )
        .orderBy(desc(insights.createdAt), desc(insights.id))
        .limit(limit)
      return rows.map((r) => ({ ...r.insight, feedback: r.feedback }))
    },

    async putFeedback(
      ownerId: string,
      insightId: string,
      values: { helpful: boolean; comment: string | null },
      tx?: DbOrTx,
    ): Promise<FeedbackRow> {
      const [row] = await (tx ?? db)
        .insert(insightFeedback)
        .values({ insightId, userId: ownerId, ...values })
        .onConflictDoUpdate({
          target: [insightFeedback.userId, insightFeedback.insightId],
          set: { ...values, updatedAt: new Date() },
        })
        .returning()
      return row
    },

    async removeFeedback(ownerId: string, insightId: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(insightFeedback)
        .where(and(eq(insightFeedback.insightId, insightId), eq(insightFeedback.userId, ownerId)))
        .returning({ id: insightFeedback.insightId })
      return rows.length > 0
    },

    async countReflections(insightId: string, tx?: DbOrTx): Promise<number> {
      const [row] = await (tx ?? db)
        .select({ n: count() })
        .from(insightReflections)
        .where(eq(insightReflections.insightId, insightId))
      return row.n
    },

    async addReflection(ownerId: string, insightId: string, text: string, tx?: DbOrTx): Promise<ReflectionRow> {
      const [row] = await (tx ?? db).insert(insightReflections).values({ insightId, userId: ownerId, text }).returning()
      return row
    },

    /** Oldest first (reading order), keyset on (created_at, id). */
    async reflections(
      ownerId: string,
      insightId: string,
      opts: { limit: number; after?: Keyset; updatedSince?: Date },
      tx?: DbOrTx,
    ) {
      const { limit, after, updatedSince } = opts
      return (tx ?? db)
        .select()
        .from(insightReflections)
        .where(
          and(
            eq(insightReflections.insightId, insightId),
            eq(insightReflections.userId, ownerId),
            updatedSince ? gte(insightReflections.updatedAt, updatedSince) : undefined,
            keysetAfter(insightReflections.createdAt, insightReflections.id, after, 'asc'),
          ),
        )
        .orderBy(asc(insightReflections.createdAt), asc(insightReflections.id))
        .limit(limit)
    },

    async editReflection(
      ownerId: string,
      insightId: string,
      id: string,
      text: string,
      tx?: DbOrTx,
    ): Promise<ReflectionRow | null> {
      const [row] = await (tx ?? db)
        .update(insightReflections)
        .set({ text, updatedAt: new Date() })
        .where(
          and(
            eq(insightReflections.id, id),
            eq(insightReflections.insightId, insightId),
            eq(insightReflections.userId, ownerId),
          ),
        )
        .returning()
      return row ?? null
    },

    async removeReflection(ownerId: string, insightId: string, id: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .delete(insightReflections)
        .where(
          and(
            eq(insightReflections.id, id),
            eq(insightReflections.insightId, insightId),
            eq(insightReflections.userId, ownerId),
          ),
        )
        .returning({ id: insightReflections.id })
      return rows.length > 0
    },
  }
}

export type InsightRepository = ReturnType<typeof createInsightRepository>

/** Every insight of the user, oldest first, with its feedback and reflections, for the account export. */
export async function* exportRows(db: DbOrTx, userId: string) {
  let after: Keyset | undefined
  for (;;) {
    const rows = await db
      .select({ insight: insights, feedback: insightFeedback })
      .from(insights)
      .leftJoin(insightFeedback, eq(insightFeedback.insightId, insights.id))
      .where(and(eq(insights.userId, userId), keysetAfter(insights.createdAt, insights.id, after, 'asc')))
      .orderBy(insights.createdAt, insights.id)
      .limit(200)
    for (const r of rows) {
      const reflections = await db
        .select()
        .from(insightReflections)
        .where(eq(insightReflections.insightId, r.insight.id))
        .orderBy(insightReflections.createdAt, insightReflections.id)
      yield { ...toInsightJson({ ...r.insight, feedback: r.feedback }), reflections: reflections.map(toReflectionJson) }
    }
    if (rows.length < 200) return
    const last = rows[rows.length - 1].insight
    after = { at: last.createdAt, id: last.id }
  }
}
