import { sql } from 'drizzle-orm'
import { type Db, queryRows } from '../../db/client.ts'
import type { ChangeAction, ChangeType } from '../../plugins/changes.ts'

export interface ChangeRow {
  seq: number
  type: ChangeType
  action: ChangeAction
  id: string | null
  range: { type: string | null; from: string; to: string; count: number } | null
  at: string
}

export interface FeedPage {
  rows: ChangeRow[]
  /** The user's latest seq and the highest seq retention removed, read in the page's own snapshot. */
  lastSeq: number
  prunedSeq: number
}

const iso = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)

/** Reads of the change log; writes go through the changes plugin (plugins/changes.ts). */
export function createSyncRepository(db: Db) {
  return {
    /**
     * The user's changes after `after` of the given types, oldest first, and the user's position, in
     * one statement (hence one snapshot): every seq up to `lastSeq` is committed in that snapshot, so
     * a caller that filtered by type may move its cursor to `lastSeq` without skipping anything.
     */
    async page(userId: string, q: { after: number | undefined; limit: number; types: readonly ChangeType[] }) {
      const rows = await queryRows<{
        last_seq: string | number | null
        pruned_seq: string | number | null
        seq: string | number | null
        type: ChangeType
        action: ChangeAction
        object_id: string | null
        range_type: string | null
        range_from: string | null
        range_to: string | null
        range_count: number | null
        at: string
      }>(
        db,
        sql`
        with pos as (
          select last_seq, pruned_seq from change_cursors where user_id = ${userId}
          union all select 0, 0 where not exists (select 1 from change_cursors where user_id = ${userId})
        )
        select pos.last_seq, pos.pruned_seq, l.*
          from pos left join lateral (
            select seq, type, action, object_id, range_type, ${iso('range_from')} as range_from,
                   ${iso('range_to')} as range_to, range_count, ${iso('at')} as at
              from change_log
             where user_id = ${userId} and seq > greatest(${q.after ?? null}::bigint, pos.pruned_seq)
               and type = any(${sql.param([...q.types])}::text[])
             order by seq
             limit ${q.limit}
          ) l on true
         order by l.seq`,
      )
      const first = rows[0]
      const page: FeedPage = {
        lastSeq: Number(first?.last_seq ?? 0),
        prunedSeq: Number(first?.pruned_seq ?? 0),
        rows: rows
          .filter((r) => r.seq !== null)
          .map((r) => ({
            seq: Number(r.seq),
            type: r.type,
            action: r.action,
            id: r.object_id,
            range:
              r.range_from === null
                ? null
                : { type: r.range_type, from: r.range_from, to: r.range_to ?? r.range_from, count: r.range_count ?? 0 },
            at: r.at,
          })),
      }
      return page
    },
  }
}
