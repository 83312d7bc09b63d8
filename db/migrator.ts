import { type SQL, sql } from 'drizzle-orm'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import type { Db } from './client.ts'

// Any constant works; it only has to be the same in every process that migrates this database.
export const MIGRATION_LOCK_ID = 727_274_001

/**
 * Applies migrations/ as drizzle's own migrator does (same `drizzle.__drizzle_migrations` table, one
 * transaction), but holds the migration lock with `pg_advisory_xact_lock` inside that transaction.
 * A session-level `pg_advisory_lock` outlives its statement: behind PgBouncer in transaction mode each
 * statement may run on another server connection, so the unlock misses the lock and it stays held on a
 * pooled connection (the next boot waits forever, or a second process re-enters it and migrates at the
 * same time). A transaction-scoped lock is released by COMMIT/ROLLBACK on the connection that holds it
 * (https://www.pgbouncer.org/features.html, "SQL feature map for pooling modes").
 */
export async function migrateUnderXactLock(connection: pg.ClientConfig, migrationsFolder: string): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder })
  const client = new pg.Client({ connectionTimeoutMillis: 5000, ...connection })
  await client.connect()
  try {
    const db = drizzle(client) as unknown as Db
    await db.transaction(async (tx) => {
      const rows = async <T>(q: SQL) => ((await tx.execute(q)) as unknown as { rows: T[] }).rows
      // Several instances may boot at once: one migrates, the others wait here, then find nothing to do.
      await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`)
      await tx.execute(sql`create schema if not exists drizzle`)
      await tx.execute(
        sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
      )
      const [last] = await rows<{ created_at: string }>(
        sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
      )
      for (const migration of migrations) {
        if (last && Number(last.created_at) >= migration.folderMillis) continue
        for (const statement of migration.sql) await tx.execute(sql.raw(statement))
        await tx.execute(
          sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
        )
      }
    })
  } finally {
    await client.end().catch(() => {})
  }
}
