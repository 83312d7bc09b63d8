import type { Db, DbOrTx } from '../../db/client.ts'
import { createSessionRepository } from '../auth/session-repository.ts'
import { createClientAppRepository } from './repository.ts'

/**
 * Revokes a client app and ends every live session opened through it, in one transaction: a session belongs
 * to its app. Returns the client row (null when unknown) and the session ids ended, for the caller to drop
 * from its session cache (other processes see it within SESSION_CACHE_TTL_MS). `onRevoked` runs in the
 * same transaction (the audit entry).
 */
export async function revokeClientApp(
  db: Db,
  clientId: string,
  onRevoked?: (tx: DbOrTx, sessionsEnded: number) => Promise<void>,
) {
  const clients = createClientAppRepository(db)
  const sessions = createSessionRepository(db)
  return db.transaction(async (tx) => {
    const client = await clients.revoke(clientId, tx)
    if (!client) return { client: null, ended: [] as string[] }
    const ended = await sessions.revokeByClient(client.id, 'client_revoked', tx)
    await onRevoked?.(tx, ended.length)
    return { client, ended }
  })
}
