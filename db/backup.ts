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
  /** Partitions of partitioned tables (their rows are in the parent's lines), recreated before the rows load. */
  partitions?: Partition[]
}
interface Partition {
  name: string
  parent: string
  /** As pg_get_expr(relpartbound) writes it: `FOR VALUES FROM ('…') TO ('…')`. */
  bound: string
}
interface Footer {
  end: true
  tables: Record<string, number>
}

export type Progress = (line: string) => void

async function tables(db: DbOrTx): Promise<string[]> {
  const rows = await queryRows<{ name: string }>(
    db,
    sql`select table_name as name from information_schema.tables t
         where table_schema = 'public' and table_type = 'BASE TABLE'
           -- A partition's rows are read and loaded through its parent.
           and not exists (select 1 from pg_class c
                            where c.relname = t.table_name and c.relnamespace = 'public'::regnamespace and c.relispartition)
         order by table_name`,
  )
  return rows.map((r) => r.name)
}

async function partitions(db: DbOrTx): Promise<Partition[]> {
  return queryRows<Partition>(
    db,
    sql`select c.relname as name, p.relname as parent, pg_get_expr(c.relpartbound, c.oid) as bound
          from pg_class c join pg_inherits i on i.inhrelid = c.oid join pg_class p on p.oid = i.inhparent
         where c.relispartition and c.relkind = 'r' and c.relnamespace = 'public'::regnamespace order by 1`,
  )
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/
const RANGE_BOUND = /^FOR VALUES FROM \('[0-9:.+ -]+'\) TO \('[0-9:.+ -]+'\)$/

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
        partitions: await partitions(tx),
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
    for (const p of header?.partitions ?? []) {
      if (!IDENTIFIER.test(p.name) || !known.has(p.parent) || !RANGE_BOUND.test(p.bound)) {
        throw new RestoreError(`the backup has a partition this code cannot recreate: ${p.name}`)
      }
      await tx.execute(sql.raw(`create table if not exists "${p.name}" partition of "${p.parent}" ${p.bound}`))
    }
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
