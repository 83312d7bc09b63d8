import { PgTransaction } from 'drizzle-orm/pg-core'
import type { DbOrTx } from './client.ts'
import { readScope, retryOnPrimary, snapshotReads } from './replicas.ts'

/**
 * Runs `work` in one REPEATABLE READ READ ONLY transaction, so that all its statements read one snapshot:
 * for reads that join what two statements answer (the measurement store's blocks, decoded between
 * statements, and its row table), where a write committing between them (a compaction moving rows into a
 * block) would otherwise show a sample twice or not at all. Inside the caller's transaction it simply runs
 * there (the caller's snapshot). A replica-scoped request (db/replicas.ts) runs it on its replica (a standby
 * serves read-only transactions) and, when the replica fails, once more on the primary. Transaction-scoped
 * only, so PgBouncer in transaction mode keeps it on one server connection.
 * https://www.postgresql.org/docs/15/transaction-iso.html#XACT-REPEATABLE-READ
 */
export async function readSnapshot<T>(db: DbOrTx, work: (tx: DbOrTx) => Promise<T>): Promise<T> {
  if (db instanceof PgTransaction) return work(db)
  const attempt = () => {
    const where = { onReplica: false }
    return {
      where,
      run: snapshotReads.run(where, () =>
        db.transaction((tx) => work(tx), { isolationLevel: 'repeatable read', accessMode: 'read only' }),
      ),
    }
  }
  const first = attempt()
  try {
    return await first.run
  } catch (err) {
    const scope = readScope.getStore()
    if (!first.where.onReplica || !scope || !retryOnPrimary(err)) throw err
    // The replica failed mid-read: the rest of the request reads the primary.
    scope.target = Promise.resolve(null)
    return attempt().run
  }
}
