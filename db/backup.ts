import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createGunzip, createGzip } from 'node:zlib'
import { sql } from 'drizzle-orm'
import { type Db, type DbOrTx, journalLength, queryRows } from './client.ts'

/**
 * A logical backup of every table of the public schema: gzip'd JSON lines, one row per line as
 * PostgreSQL's own `to_jsonb` writes it (so every type round-trips through its text form), read in one
 * repeatable-read transaction — a consistent snapshot. On the embedded database while the server runs
 * it goes through the server's socket, and that transaction holds the database for its duration.
 * The schema is not in the file: restore applies this code's migrations first, and refuses a backup
 * taken at another migration.
 */
export const BACKUP_FORMAT = 'nowatch-backup'
const BATCH = 1000
const PROGRESS_EVERY_MS = 2000

interface Header {
  format: typeof BACKUP_FORMAT
  version: 1
  created: string
  migrations: number
}
interface Footer {
  end: true
  tables: Record<string, number>
}

export type Progress = (line: string) => void

async function tables(db: DbOrTx): Promise<string[]> {
  const rows = await queryRows<{ name: string }>(
    db,
    sql`select table_name as name from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  )
  return rows.map((r) => r.name)
}

async function appliedMigrations(db: DbOrTx): Promise<number> {
  const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from drizzle.__drizzle_migrations`)
  return row?.n ?? 0
}

function progressTimer(progress: Progress) {
  let last = Date.now()
  return (line: () => string) => {
    if (Date.now() - last < PROGRESS_EVERY_MS) return
    last = Date.now()
    progress(line())
  }
}

/** Writes the backup to `file` (through a temporary name: a failed run leaves no half file behind). */
export async function backupDatabase(db: Db, file: string, progress: Progress): Promise<Footer['tables']> {
  const tmp = `${file}.partial`
  const gzip = createGzip()
  const out = createWriteStream(tmp, { mode: 0o600 })
  gzip.pipe(out)
  const write = async (value: unknown) => {
    if (!gzip.write(`${JSON.stringify(value)}\n`)) await once(gzip, 'drain')
  }
  const counts: Record<string, number> = {}
  const tick = progressTimer(progress)
  await db.transaction(
    async (tx) => {
      const header: Header = {
        format: BACKUP_FORMAT,
        version: 1,
        created: new Date().toISOString(),
        migrations: await appliedMigrations(tx),
      }
      await write(header)
      for (const table of await tables(tx)) {
        counts[table] = 0
        await tx.execute(
          sql`declare backup_rows no scroll cursor for select to_jsonb(t) as r from ${sql.identifier(table)} t`,
        )
        for (;;) {
          const rows = await queryRows<{ r: unknown }>(tx, sql.raw(`fetch ${BATCH} from backup_rows`))
          for (const row of rows) await write({ t: table, r: row.r })
          counts[table] += rows.length
          tick(() => `backup: ${table} ${counts[table]} rows…`)
          if (rows.length < BATCH) break
        }
        await tx.execute(sql`close backup_rows`)
      }
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  )
  const footer: Footer = { end: true, tables: counts }
  await write(footer)
  gzip.end()
  await once(out, 'close')
  await rename(tmp, file)
  return counts
}

export class RestoreError extends Error {
  override name = 'RestoreError'
}

/**
 * Loads a backup into a migrated, empty database (every public table empty), in one transaction:
 * all of it or none. Foreign keys are checked by the data having come from a consistent snapshot;
 * they are not re-checked row by row (session_replication_role = replica), so tables load in any order.
 */
export async function restoreDatabase(db: Db, file: string, progress: Progress): Promise<Footer['tables']> {
  const lines = createInterface({
    input: createReadStream(file).pipe(createGunzip()),
    crlfDelay: Number.POSITIVE_INFINITY,
  })
  const iterator = lines[Symbol.asyncIterator]()
  const first = await iterator.next()
  let header: Header | null = null
  try {
    header = first.done ? null : (JSON.parse(first.value) as Header)
  } catch {}
  if (header?.format !== BACKUP_FORMAT || header.version !== 1)
    throw new RestoreError(`${file} is not a NOWATCH backup`)
  if (header.migrations !== journalLength()) {
    throw new RestoreError(
      `the backup was taken at migration ${header.migrations}, this code has ${journalLength()}: restore it with the matching version`,
    )
  }
  const known = new Set(await tables(db))
  for (const table of known) {
    const [row] = await queryRows<{ any: boolean }>(
      db,
      sql`select exists (select 1 from ${sql.identifier(table)}) as any`,
    )
    if (row?.any)
      throw new RestoreError(`the target database is not empty (table ${table} has rows); restore into a fresh one`)
  }
  const counts: Record<string, number> = {}
  const tick = progressTimer(progress)
  let footer: Footer | null = null
  await db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`)
    let table = ''
    let batch: unknown[] = []
    const flush = async () => {
      if (!batch.length) return
      await tx.execute(
        sql`insert into ${sql.identifier(table)}
            select * from jsonb_populate_recordset(null::${sql.identifier(table)}, ${JSON.stringify(batch)}::jsonb)`,
      )
      counts[table] = (counts[table] ?? 0) + batch.length
      batch = []
      tick(() => `restore: ${table} ${counts[table]} rows…`)
    }
    for (;;) {
      const next = await iterator.next()
      if (next.done) break
      const line = JSON.parse(next.value) as { t: string; r: unknown } | Footer
      if ('end' in line) {
        footer = line
        break
      }
      if (line.t !== table) {
        await flush()
        if (!known.has(line.t)) throw new RestoreError(`the backup has a table this schema does not: ${line.t}`)
        table = line.t
      }
      batch.push(line.r)
      if (batch.length >= BATCH) await flush()
    }
    await flush()
    const expected = (footer as Footer | null)?.tables
    if (!expected) throw new RestoreError(`${file} is truncated (no end record); nothing was restored`)
    for (const [name, n] of Object.entries(expected)) {
      if ((counts[name] ?? 0) !== n) throw new RestoreError(`${name}: ${counts[name] ?? 0} rows read, ${n} expected`)
    }
  })
  return counts
}
