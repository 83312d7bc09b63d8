import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { type SQL, sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator'
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import pg from 'pg'
import * as schema from './schema/index.ts'

export type Schema = typeof schema
/** The one Drizzle type every repository works against: PGlite and node-postgres both fit it. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>
export type Tx = PgTransaction<PgQueryResultHKT, Schema>
/** What a repository function accepts: the database, or the transaction its caller owns. */
export type DbOrTx = Db | Tx

export const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), '..', 'migrations')

export interface Database {
  db: Db
  kind: 'pglite' | 'postgres'
  /** Applies pending migrations; safe to call from several processes at once on PostgreSQL. */
  migrate(): Promise<void>
  /** How many migrations of migrations/ the database has not applied yet. */
  pendingMigrations(): Promise<number>
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string
  /** PGlite data folder, or `memory://` for a throw-away database. */
  dataDir?: string
  poolMax?: number
  /** A ready PGlite instance (tests restore a migrated template into one). */
  pglite?: PGlite
}

// Any constant works; it only has to be the same in every process that migrates this database.
const MIGRATION_LOCK_ID = 727_274_001

export function journalLength(): number {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: unknown[]
  }
  return journal.entries.length
}

/** Raw SQL with typed rows; both drivers answer `{ rows }`. */
export async function queryRows<T>(db: DbOrTx, query: SQL): Promise<T[]> {
  const res = (await db.execute(query)) as unknown as { rows: T[] }
  return res.rows
}

async function appliedMigrations(db: Db): Promise<number> {
  const [exists] = await queryRows<{ present: boolean }>(
    db,
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  )
  if (!exists?.present) return 0
  const [res] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from drizzle.__drizzle_migrations`)
  return res?.n ?? 0
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolMax ?? 20)
  return openPglite(options)
}

async function openPostgres(url: string, poolMax: number): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // A dead server must fail requests quickly (503), not hang them.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
  })
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  const db = drizzleNodePg(pool, { schema }) as unknown as Db
  return {
    db,
    kind: 'postgres',
    async migrate() {
      // Several instances may boot at once: one migrates, the others wait on the advisory lock.
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID])
        await migrateNodePg(drizzleNodePg(client, { schema }), { migrationsFolder })
      } finally {
        await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => {})
        await client.end()
      }
    },
    async pendingMigrations() {
      return journalLength() - (await appliedMigrations(db))
    },
    async close() {
      await pool.end()
    },
  }
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  let client = options.pglite
  if (!client) {
    const dataDir = options.dataDir ?? 'memory://'
    if (!dataDir.startsWith('memory://')) await mkdir(resolve(dataDir), { recursive: true })
    client = await PGlite.create(dataDir.startsWith('memory://') ? dataDir : resolve(dataDir))
  }
  const pglite = client
  const db = drizzlePglite(pglite, { schema }) as unknown as Db
  return {
    db,
    kind: 'pglite',
    async migrate() {
      await migratePglite(drizzlePglite(pglite, { schema }), { migrationsFolder })
    },
    async pendingMigrations() {
      return journalLength() - (await appliedMigrations(db))
    },
    async close() {
      if (!pglite.closed) await pglite.close()
    },
  }
}
