import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { type SQL, sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import pg from 'pg'
import { DataDirBusyError, lockDataDir } from './data-dir-lock.ts'
import { migrateUnderXactLock } from './migrator.ts'
import { type PgliteSocketServer, servePgliteOnSocket } from './pglite-socket.ts'
import { type ReplicaOptions, ReplicaSet, RoutedPool } from './replicas.ts'
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
  /** How this process reaches the data: its own PGlite, a pg pool, or the owner's socket (CLI while serving). */
  via: 'pglite' | 'postgres' | 'socket'
  /** The node-postgres pool, when there is one (metrics read its counts). */
  pool?: pg.Pool
  /** The read replicas (DATABASE_REPLICA_URLS), when there are any. */
  replicas?: ReplicaSet
  /** The PGlite instance this process owns, if any. */
  pglite?: PGlite
  /**
   * PGlite in a folder: serve it on a Unix socket in that folder (the server does, after migrating),
   * so the CLI can work while the server runs. Answers the socket's path.
   */
  serveSocket?(log?: { warn(obj: object, msg: string): void }): Promise<string>
  /** Applies pending migrations; safe to call from several processes at once on PostgreSQL. */
  migrate(): Promise<void>
  /** How many migrations of migrations/ the database has not applied yet. */
  pendingMigrations(): Promise<number>
  close(): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string
  /**
   * A connection that bypasses the pooler (PgBouncer), for migrations; default databaseUrl. The migration
   * lock is transaction-scoped either way, so this is for DDL the pooler should not carry, not for safety.
   */
  directUrl?: string
  /** PGlite data folder, or `memory://` for a throw-away database. */
  dataDir?: string
  poolMax?: number
  /** Streaming replicas of databaseUrl's primary, for the reads of routes declared `reads: 'replica'`. */
  replicaUrls?: string[]
  replica?: ReplicaOptions
  /** A ready PGlite instance (tests restore a migrated template into one). */
  pglite?: PGlite
}

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
  if (options.databaseUrl) {
    const connection = { connectionString: options.databaseUrl }
    const direct = options.directUrl ? { connectionString: options.directUrl } : connection
    const database = await openPostgres(connection, options.poolMax ?? 20, direct)
    if (options.replicaUrls?.length) {
      const replicas = new ReplicaSet(
        database.pool as pg.Pool,
        options.replicaUrls,
        options.replica ?? { maxLagS: 10, checkIntervalMs: 1000 },
        options.poolMax ?? 20,
      )
      ;(database.pool as RoutedPool).replicas = replicas
      await replicas.start()
      const close = database.close
      Object.assign(database, {
        replicas,
        async close() {
          await replicas.close()
          await close()
        },
      })
    }
    return database
  }
  return openPglite(options)
}

/**
 * The CLI's way in. PostgreSQL: a small pool. PGlite: the folder's own PGlite when no process
 * holds it; when the server holds it, the server's socket in that folder (so the write is the
 * server's at once), else DataDirBusyError naming the holder.
 */
export async function openDatabaseForCli(options: {
  databaseUrl?: string
  directUrl?: string
  dataDir: string
}): Promise<Database> {
  if (options.databaseUrl)
    return openDatabase({ databaseUrl: options.databaseUrl, directUrl: options.directUrl, poolMax: 2 })
  try {
    return await openPglite({ dataDir: options.dataDir })
  } catch (err) {
    if (!(err instanceof DataDirBusyError)) throw err
    const dir = resolve(options.dataDir)
    const probe = new pg.Client({ host: dir, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 })
    try {
      await probe.connect()
      await probe.end()
    } catch {
      throw err
    }
    const database = await openPostgres({ host: dir, user: 'postgres', database: 'postgres' }, 1)
    return { ...database, kind: 'pglite', via: 'socket' }
  }
}

async function openPostgres(
  connection: pg.PoolConfig,
  poolMax: number,
  direct: pg.ClientConfig = connection,
): Promise<Database> {
  const pool = new RoutedPool({
    ...connection,
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
    via: 'postgres',
    pool,
    async migrate() {
      // Several instances may boot at once: one migrates, the others wait on the (transaction-scoped) lock.
      await migrateUnderXactLock(direct, migrationsFolder)
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
  let lock: { release(): void } | undefined
  let dir: string | undefined
  if (!client) {
    const dataDir = options.dataDir ?? 'memory://'
    if (dataDir.startsWith('memory://')) client = await PGlite.create(dataDir)
    else {
      dir = resolve(dataDir)
      await mkdir(dir, { recursive: true })
      // One process per folder, checked before PGlite touches it.
      lock = lockDataDir(dir)
      try {
        client = await PGlite.create(dir)
      } catch (err) {
        lock.release()
        throw err
      }
    }
  }
  const pglite = client
  const db = drizzlePglite(pglite, { schema }) as unknown as Db
  let socket: PgliteSocketServer | undefined
  const database: Database = {
    db,
    kind: 'pglite',
    via: 'pglite',
    pglite,
    async migrate() {
      await migratePglite(drizzlePglite(pglite, { schema }), { migrationsFolder })
    },
    ...(dir && {
      async serveSocket(log) {
        const folder = dir as string
        socket ??= await servePgliteOnSocket(pglite, folder, log)
        return socket.path
      },
    }),
    async pendingMigrations() {
      return journalLength() - (await appliedMigrations(db))
    },
    async close() {
      await socket?.close()
      if (!pglite.closed) await pglite.close()
      lock?.release()
    },
  }
  return database
}
