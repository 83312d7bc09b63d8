import type { Db, DbOrTx } from '../../db/client.ts'
import { type TransactionEndingSessions, transactionEndingSessionsOn } from '../../plugins/end-sessions.ts'
import { createSessionRepository } from '../auth/session-repository.ts'
import { createClientAppRepository } from './repository.ts'

/**
 * Revokes a client app and ends every live session opened through it, in one transaction: a session belongs
 * to its app. Returns the client row (null when unknown) and the session ids ended. The sessions end the one
 * way sessions end: a server passes its `app.transactionEndingSessions` (its caches forget them at once;
 * other processes see it within SESSION_CACHE_TTL_MS); without it (the CLI, a process with no caches) the
 * same function runs on `db` alone. `onRevoked` runs in the same transaction (the audit entry).
 */
export async function revokeClientApp(
  db: Db,
  clientId: string,
  options: {
    transactionEndingSessions?: TransactionEndingSessions
    onRevoked?: (tx: DbOrTx, sessionsEnded: number) => Promise<void>
  } = {},
) {
  const clients = createClientAppRepository(db)
  const run = options.transactionEndingSessions ?? transactionEndingSessionsOn(db, createSessionRepository(db))
  return run(async (tx, end) => {
    const client = await clients.revoke(clientId, tx)
    if (!client) return { client: null, ended: [] as string[] }
    const ended = await end({ client: client.id }, 'client_revoked')
    await options.onRevoked?.(tx, ended.length)
    return { client, ended }
  })
}
