import { type SQL, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type DbOrTx, queryRows } from '../db/client.ts'

/**
 * The kinds of user data the change log follows. `measurements` changes are time ranges of one sample
 * type (or of every type, for a range delete); the others name one object by id (`profile`: the user id).
 */
export const CHANGE_TYPES = [
  'measurements',
  'checkin',
  'day_feedback',
  'activity',
  'intention',
  'insight',
  'profile',
  'share',
] as const
export type ChangeType = (typeof CHANGE_TYPES)[number]
export const CHANGE_ACTIONS = ['created', 'updated', 'deleted'] as const
export type ChangeAction = (typeof CHANGE_ACTIONS)[number]

export interface ChangeRange {
  /** The sample type, or null for every type (a range delete without `type`). */
  type: string | null
  from: Date
  to: Date
  count: number
}

/** What a write path tells: one object by id, or one measurement range. */
export type ChangeEntry =
  | { type: ChangeType; action: ChangeAction; id: string; range?: undefined }
  | { type: ChangeType; action: ChangeAction; range: ChangeRange; id?: undefined }

export interface RecordedChange {
  userId: string
  seq: number
  type: ChangeType
  action: ChangeAction
  id: string | null
  range: ChangeRange | null
  at: Date
}

/**
 * A domain that writes something with every change (the webhook outbox) adds a data-modifying statement
 * to the recording statement itself: `rows` names the inserted change_log rows (user_id, seq, type, action,
 * object_id, range_type, range_from, range_to, range_count, at). It commits with the change, and costs no
 * round trip of its own.
 */
export type ChangeStatement = (rows: SQL) => SQL

/** One user's entries for `recording`. */
export interface UserChanges {
  userId: string
  entries: ChangeEntry[]
}

export interface Changes {
  /**
   * Records changes of one user's data in the caller's transaction: no change without its entry, no
   * entry without its change. Call it as the last write of the transaction (see below: it holds the
   * user's change row lock until commit).
   */
  record(tx: DbOrTx, userId: string, entries: ChangeEntry | ChangeEntry[]): Promise<RecordedChange[]>
  /**
   * The same recording as WITH items (`change_cursor`, `change_logged`, ...) for a write path to put into its
   * own last statement (the measurement upload), so the change costs no round trip of its own: of one user, or
   * of several users' changes written by one statement (uploads committed as a group, measurement/group-commit.ts).
   * Nothing is recorded for a user where `when` is false: an SQL boolean over the statement's other items and
   * `u.user_id`, the user's id (true when not given).
   * The same rule as `record`: that statement is the transaction's last write. Users' cursor rows are locked in
   * user id order, so statements recording the same users at once cannot deadlock on them.
   */
  recording(users: UserChanges[], when?: SQL): SQL
  /** Adds a statement run with every recording (see ChangeStatement); once, at start. */
  alsoWrite(statement: ChangeStatement): void
  /** Deletes entries older than the retention and moves each user's `pruned_seq`; answers how many went. */
  prune(retentionDays: number): Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    changes: Changes
  }
}

/** Any constant; the same in every process, so one of them prunes at a time. */
export const CHANGE_RETENTION_LOCK_ID = 727_274_018
const PRUNE_EVERY_MS = 3600_000
const PRUNE_BATCH = 5000

/**
 * The ordering, and why a reader never skips a change committed late.
 *
 * A plain global sequence is not enough: transaction A takes seq 10, transaction B takes seq 11 and
 * commits first; a reader then sees 11, stores cursor 11, and never sees 10 when A commits. Instead each
 * user has one row in `change_cursors`, and recording a change *updates* it (`last_seq = last_seq + n`)
 * in the transaction of the change. The update takes that row's lock until commit or rollback, so two
 * transactions writing the same user's data take their seq one after the other, each only after the
 * previous one has ended: a user's seqs are handed out in commit order, without gaps (a rollback gives its
 * numbers back). A snapshot that shows seq N therefore shows every seq below N of that user, whichever
 * process, connection or database (PGlite, PostgreSQL, one Citus shard per user) wrote them. The feed is
 * per user, so this is all the order it needs; different users never wait for each other.
 *
 * The lock is held from the recording to the commit only, which is why `record` is the last write of a
 * transaction: concurrent uploads of one user then queue for the commit, not for the whole upload.
 */
export default fp(
  async function changesPlugin(app: FastifyInstance) {
    const statements: ChangeStatement[] = []
    const { db, config } = app

    const changes: Changes = {
      alsoWrite(statement) {
        statements.push(statement)
      },

      recording(users, when) {
        const sorted = users.filter((u) => u.entries.length > 0).sort((a, b) => (a.userId < b.userId ? -1 : 1))
        // A write that changed nothing records nothing: its caller has no statement to put this into.
        if (sorted.length === 0) throw new Error('changes.recording: no entries to record')
        // Every value goes in as an array parameter, one per column, so that the text is the same for any
        // number of users and entries: the statement that holds it can keep its plan (db/pipelined.ts).
        const entries = sorted.flatMap((u) =>
          u.entries.map((e, i) => ({ userId: u.userId, n: u.entries.length, ord: i + 1, e })),
        )
        const col = <T>(f: (v: (typeof entries)[number]) => T, type: string) =>
          sql`${sql.param(entries.map(f))}::${sql.raw(type)}[]`
        return sql`
          change_cursor as (
            insert into change_cursors as c (user_id, last_seq)
            select u.user_id, u.n
              from unnest(${sql.param(sorted.map((u) => u.userId))}::uuid[],
                          ${sql.param(sorted.map((u) => u.entries.length))}::int8[]) as u(user_id, n)
             where ${when ?? sql`true`}
             order by u.user_id
            on conflict (user_id) do update set last_seq = c.last_seq + excluded.last_seq
            returning user_id, last_seq
          ),
          change_logged as (
            insert into change_log (user_id, seq, type, action, object_id, range_type, range_from, range_to, range_count)
            select c.user_id, c.last_seq - v.n + v.ord, v.type, v.action, v.object_id, v.range_type, v.range_from, v.range_to, v.range_count
              from change_cursor c
              join unnest(${col((v) => v.userId, 'uuid')}, ${col((v) => v.n, 'int8')}, ${col((v) => v.ord, 'int4')},
                          ${col((v) => v.e.type, 'text')}, ${col((v) => v.e.action, 'text')}, ${col((v) => v.e.id ?? null, 'text')},
                          ${col((v) => v.e.range?.type ?? null, 'text')},
                          ${col((v) => (v.e.range ? v.e.range.from.toISOString() : null), 'timestamptz')},
                          ${col((v) => (v.e.range ? v.e.range.to.toISOString() : null), 'timestamptz')},
                          ${col((v) => v.e.range?.count ?? null, 'int4')})
                   as v(user_id, n, ord, type, action, object_id, range_type, range_from, range_to, range_count)
                on v.user_id = c.user_id
             order by c.user_id, v.ord
            returning user_id, seq, type, action, object_id, range_type, range_from, range_to, range_count, at
          )${sql.join(
            statements.map((s, i) => sql`, ${sql.raw(`change_also_${i}`)} as (${s(sql.raw('change_logged'))})`),
            sql``,
          )}`
      },

      async record(tx, userId, entry) {
        const entries = Array.isArray(entry) ? entry : [entry]
        if (entries.length === 0) return []
        const rows = await queryRows<{ seq: string | number; at: Date | string }>(
          tx,
          sql`with ${changes.recording([{ userId, entries }])} select seq, at from change_logged order by seq`,
        )
        const recorded: RecordedChange[] = rows.map((r, i) => ({
          userId,
          seq: Number(r.seq),
          type: entries[i].type,
          action: entries[i].action,
          id: entries[i].id ?? null,
          range: entries[i].range ?? null,
          at: new Date(r.at),
        }))
        return recorded
      },

      async prune(retentionDays) {
        let total = 0
        for (;;) {
          // One process at a time (advisory lock), PRUNE_BATCH rows a statement; each user's pruned_seq
          // moves with its rows, so a cursor below it answers 410 cursor_expired.
          const deleted = await db.transaction(async (tx) => {
            const [lock] = await queryRows<{ ok: boolean }>(
              tx,
              sql`select pg_try_advisory_xact_lock(${CHANGE_RETENTION_LOCK_ID}) as ok`,
            )
            if (!lock?.ok) return 0
            const [row] = await queryRows<{ n: number }>(
              tx,
              sql`
              with old as (
                select user_id, seq from change_log
                 where at < now() - make_interval(days => ${retentionDays})
                 limit ${PRUNE_BATCH}
              ),
              d as (
                delete from change_log l using old
                 where l.user_id = old.user_id and l.seq = old.seq
                returning l.user_id, l.seq
              ),
              moved as (
                update change_cursors c set pruned_seq = greatest(c.pruned_seq, m.seq)
                  from (select user_id, max(seq) as seq from d group by user_id) m
                 where c.user_id = m.user_id
                returning 1
              )
              select (select count(*) from d)::int as n, (select count(*) from moved)::int as users`,
            )
            return row?.n ?? 0
          })
          total += deleted
          if (deleted < PRUNE_BATCH) return total
        }
      },
    }
    app.decorate('changes', changes)

    if (config.JOBS_ENABLED) {
      const prune = () => {
        changes.prune(config.CHANGE_LOG_RETENTION_DAYS).catch((err) => app.log.warn({ err }, 'change log retention'))
      }
      const timer = setInterval(prune, PRUNE_EVERY_MS)
      timer.unref()
      app.addHook('onClose', async function stopChangeRetention() {
        clearInterval(timer)
      })
    }
  },
  { name: 'changes', dependencies: ['config', 'db'] },
)
