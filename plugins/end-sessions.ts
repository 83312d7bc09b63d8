import type { Db, DbOrTx } from '../db/client.ts'

/**
 * Ends sessions inside the surrounding transaction and answers their ids: of the user `who`, one session
 * (`only`) or every live one (optionally all but `except`); or, for `{ client }`, every live session opened
 * through that client app, whoever's (the app was revoked).
 */
export type EndSessions = (
  who: string | { client: string },
  reason: string,
  which?: { only?: string; except?: string },
) => Promise<string[]>

/** Runs `work` in a transaction in which it ends sessions through `end`; answers what `work` answers. */
export type TransactionEndingSessions = <T>(work: (tx: DbOrTx, end: EndSessions) => Promise<T>) => Promise<T>

/** What ending sessions needs of the session repository (routes/auth/session-repository.ts). */
export interface SessionEnding {
  revoke(userId: string, sessionId: string, reason: string, tx?: DbOrTx): Promise<boolean>
  revokeAll(userId: string, reason: string, exceptSessionId?: string, tx?: DbOrTx): Promise<string[]>
  revokeByClient(clientId: string, reason: string, tx?: DbOrTx): Promise<Array<{ id: string; userId: string }>>
}

/**
 * Ending sessions, written once. After the commit, `ended` gets the sessions ended and their owners: the
 * auth plugin forgets them in its caches there (`app.transactionEndingSessions`); a process without caches
 * (the CLI) passes nothing, and the servers see the change within SESSION_CACHE_TTL_MS.
 */
export function transactionEndingSessionsOn(
  db: Db,
  sessions: SessionEnding,
  ended?: (sessionIds: string[], ownerIds: string[]) => void,
): TransactionEndingSessions {
  return async function transactionEndingSessions(work) {
    const ids: string[] = []
    const owners = new Set<string>()
    const result = await db.transaction(async (tx) =>
      work(tx, async function end(who, reason, which = {}) {
        let these: string[]
        if (typeof who !== 'string') {
          const rows = await sessions.revokeByClient(who.client, reason, tx)
          for (const r of rows) owners.add(r.userId)
          these = rows.map((r) => r.id)
        } else {
          these = which.only
            ? (await sessions.revoke(who, which.only, reason, tx))
              ? [which.only]
              : []
            : await sessions.revokeAll(who, reason, which.except, tx)
          owners.add(who)
        }
        ids.push(...these)
        return these
      }),
    )
    // After the commit: invalidating earlier would let a concurrent request cache the not-yet-ended state.
    ended?.(ids, [...owners])
    return result
  }
}
