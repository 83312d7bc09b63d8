import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { type Database, migrationsFolder, openDatabase } from '../../db/client.ts'

/** A hash of migrations/, so a cached template is rebuilt whenever a migration changes. */
function migrationsHash(): string {
  const h = createHash('sha256')
  const walk = (dir: string) => {
    for (const name of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, name.name)
      if (name.isDirectory()) walk(p)
      else h.update(name.name).update(readFileSync(p))
    }
  }
  walk(migrationsFolder)
  return h.digest('hex').slice(0, 16)
}

/**
 * PGlite: a migrated template is dumped once to the temp folder and loaded into a fresh
 * in-memory instance for every test file (seconds saved per file).
 */
async function freshPglite(): Promise<Database> {
  const template = join(tmpdir(), `nowatch-pglite-template-${migrationsHash()}.tar.gz`)
  if (existsSync(template)) {
    const blob = new Blob([await readFile(template)])
    const pglite = await PGlite.create({ loadDataDir: blob })
    const database = await openDatabase({ pglite })
    // Nothing to apply unless the template is stale; cheap either way.
    await database.migrate()
    return database
  }
  const database = await openDatabase({ dataDir: 'memory://' })
  await database.migrate()
  const pglite = (database.db as unknown as { $client: PGlite }).$client
  const dump = await pglite.dumpDataDir('gzip')
  const tmp = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`
  await writeFile(tmp, Buffer.from(await dump.arrayBuffer()))
  await rename(tmp, template)
  return database
}

/** PostgreSQL: a new database per test file, dropped when the file is done. */
async function freshPostgres(url: string): Promise<Database & { url: string }> {
  const name = `nowatch_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const dbUrl = new URL(url)
  dbUrl.pathname = `/${name}`
  const database = await openDatabase({ databaseUrl: dbUrl.toString(), poolMax: 10 })
  await database.migrate()
  const close = database.close
  return {
    ...database,
    url: dbUrl.toString(),
    async close() {
      await close()
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
}

/** A migrated, empty database for one test file: PGlite, or PostgreSQL when DATABASE_URL is set. */
export async function freshDatabase(): Promise<Database & { url?: string }> {
  const url = process.env.DATABASE_URL
  return url ? freshPostgres(url) : freshPglite()
}
