import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import pg from 'pg'
import { type Db, migrationsFolder, openDatabase } from '../../db/client.ts'

/**
 * A database migrated up to (not including) the migration named `name` (its tag without the number, so
 * renumbering at a merge does not matter), so a test can fill it with rows as an older server left them
 * and then apply the rest: a backfill is tested on a populated database. PGlite, or a new PostgreSQL
 * database when DATABASE_URL is set (dropped by `close`).
 */
export async function databaseBefore(
  name: string,
): Promise<{ db: Db; migrateRest(): Promise<void>; close(): Promise<void> }> {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: Array<{ tag: string; when: number }>
  }
  const at = journal.entries.findIndex((e) => e.tag.replace(/^\d+_/, '') === name)
  if (at < 0) throw new Error(`no migration named ${name}`)
  const migrations = readMigrationFiles({ migrationsFolder })
  const url = process.env.DATABASE_URL
  let dbName: string | null = null
  let database: Awaited<ReturnType<typeof openDatabase>>
  if (url) {
    dbName = `nowatch_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    await admin.query(`create database ${dbName}`)
    await admin.end()
    const dbUrl = new URL(url)
    dbUrl.pathname = `/${dbName}`
    database = await openDatabase({ databaseUrl: dbUrl.toString(), poolMax: 4 })
  } else {
    database = await openDatabase({ dataDir: 'memory://' })
  }
  const db = database.db
  // Each migration in one transaction, as the migrators apply them.
  const apply = async (from: number, to: number) => {
    for (const m of migrations.slice(from, to)) {
      await db.transaction(async (tx) => {
        for (const statement of m.sql) if (statement.trim()) await tx.execute(sql.raw(statement))
      })
    }
  }
  await apply(0, at)
  return {
    db,
    migrateRest: () => apply(at, migrations.length),
    async close() {
      await database.close()
      if (url && dbName) {
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        await c.query(`drop database if exists ${dbName} with (force)`)
        await c.end()
      }
    },
  }
}
