import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { SQL } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import pg from 'pg'
import { type Db, migrationsFolder } from '../../db/client.ts'
import { migrateUnderXactLock } from '../../db/migrator.ts'
import * as schema from '../../db/schema/index.ts'

/**
 * A database of an existing deployment: migrated up to (not including) the migration whose tag ends with
 * `beforeTag` (found by name, so the numbering at a merge does not matter), so a test can write rows the
 * old schema had, then `migrateRest()` applies the remaining migrations as an upgrade would.
 * PGlite in memory, or a new PostgreSQL database (DATABASE_URL) dropped on `close()`. `db` is a drizzle handle on
 * it (for `queryRows` and the repositories), `query` a shorthand for a raw statement's rows.
 */
export async function databaseMigratedUpTo(beforeTag: string) {
  const folder = await mkdtemp(join(tmpdir(), 'nowatch-partway-'))
  await cp(migrationsFolder, folder, { recursive: true })
  const journalPath = join(folder, 'meta', '_journal.json')
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: Array<{ tag: string }> }
  const at = journal.entries.findIndex((e) => e.tag.endsWith(beforeTag))
  if (at < 0) throw new Error(`no migration named *${beforeTag}`)
  journal.entries = journal.entries.slice(0, at)
  await writeFile(journalPath, JSON.stringify(journal))

  const url = process.env.DATABASE_URL
  if (!url) {
    const pglite = await PGlite.create('memory://')
    const db = drizzlePglite(pglite, { schema })
    await migratePglite(db, { migrationsFolder: folder })
    return {
      db: db as unknown as Db,
      query: async <T>(q: SQL) => (await db.execute(q)).rows as T[],
      migrateRest: () => migratePglite(db, { migrationsFolder }),
      async close() {
        await pglite.close()
        await rm(folder, { recursive: true, force: true })
      },
    }
  }
  const name = `nowatch_partway_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const dbUrl = new URL(url)
  dbUrl.pathname = `/${name}`
  await migrateUnderXactLock({ connectionString: dbUrl.toString() }, folder)
  const client = new pg.Client({ connectionString: dbUrl.toString() })
  await client.connect()
  const db = drizzleNodePg(client, { schema })
  return {
    db: db as unknown as Db,
    query: async <T>(q: SQL) => (await db.execute(q)).rows as T[],
    migrateRest: () => migrateUnderXactLock({ connectionString: dbUrl.toString() }, migrationsFolder),
    async close() {
      await client.end()
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
      await rm(folder, { recursive: true, force: true })
    },
  }
}
