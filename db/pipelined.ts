import { createRequire } from 'node:module'
import type { SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import type pg from 'pg'

/**
 * Several statements in one round trip and one transaction (issue 23b). The extended protocol's messages for
 * each statement (Parse, Bind, Describe, Execute) and a single Sync go out in one write: everything before
 * the Sync is one implicit transaction (an error in any statement rolls back all of them), and each statement
 * still takes its own snapshot under READ COMMITTED, as if sent one by one inside BEGIN ... COMMIT. That is
 * what a hot write path needs when "take a lock, then look and write" would otherwise cost BEGIN, the lock,
 * the statement and COMMIT as four round trips: on a loaded machine each round trip is a context switch to
 * the database and back.
 *
 * node-postgres sends one statement per round trip and has no such batch; this is a "submittable" (its
 * documented extension point for custom queries, the interface pg-cursor and pg-copy-streams use) that writes
 * the messages itself. Parameters are mapped as node-postgres maps them; rows come back as text (the caller
 * parses its own few columns). Works through PgBouncer in transaction mode (unnamed statements only).
 */

const require = createRequire(import.meta.url)
const { prepareValue } = require('pg/lib/utils') as { prepareValue: (v: unknown) => unknown }
const dialect = new PgDialect()

/** The rows of the last statement, each column as PostgreSQL's text (null for SQL null). */
export type TextRow = Record<string, string | null>

interface Connection {
  stream: { cork?: () => void; uncork?: () => void }
  parse(m: { text: string; name?: string; types?: unknown[] }): void
  bind(m: { portal?: string; statement?: string; values: unknown[]; valueMapper: (v: unknown) => unknown }): void
  describe(m: { type: 'P' | 'S'; name?: string }): void
  execute(m: { portal?: string; rows?: number }): void
  sync(): void
}

class Pipelined {
  readonly done: Promise<TextRow[]>
  private resolve!: (rows: TextRow[]) => void
  private reject!: (err: unknown) => void
  private settled = false
  private names: string[] = []
  private rows: TextRow[] = []
  /** The statements' results so far: the last one's rows are the answer. */
  private completed = 0
  callback?: unknown

  constructor(private readonly queries: Array<{ sql: string; params: unknown[] }>) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }

  submit(connection: Connection): Error | null {
    connection.stream.cork?.()
    try {
      for (const q of this.queries) {
        connection.parse({ text: q.sql })
        connection.bind({ values: q.params, valueMapper: prepareValue })
        connection.describe({ type: 'P' })
        connection.execute({})
      }
      connection.sync()
    } catch (err) {
      // A parameter that cannot be mapped: nothing was executed (the Sync below ends the batch).
      connection.sync()
      this.fail(err)
    } finally {
      connection.stream.uncork?.()
    }
    return null
  }

  handleRowDescription(msg: { fields: Array<{ name: string }> }) {
    this.names = msg.fields.map((f) => f.name)
    this.rows = []
  }

  handleDataRow(msg: { fields: Array<string | null> }) {
    const row: TextRow = {}
    this.names.forEach((name, i) => {
      row[name] = msg.fields[i] ?? null
    })
    this.rows.push(row)
  }

  handleCommandComplete() {
    this.completed++
  }

  handleEmptyQuery() {
    this.completed++
  }

  handlePortalSuspended() {}

  handleError(err: unknown) {
    this.fail(err)
  }

  handleReadyForQuery() {
    if (this.settled) return
    this.settled = true
    if (this.completed === this.queries.length) this.resolve(this.rows)
    else this.reject(new Error(`pipelined statements: ${this.completed} of ${this.queries.length} completed`))
  }

  handleCopyInResponse() {
    this.fail(new Error('COPY is not supported in pipelined statements'))
  }

  handleCopyData() {}

  private fail(err: unknown) {
    if (this.settled) return
    this.settled = true
    this.reject(err)
  }
}

/** Runs `statements` in one round trip and one transaction on a connection of `pool`; the last one's rows. */
export async function pipelined(pool: pg.Pool, statements: SQL[]): Promise<TextRow[]> {
  const queries = statements.map((s) => {
    const q = dialect.sqlToQuery(s)
    return { sql: q.sql, params: q.params }
  })
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    const query = new Pipelined(queries)
    client.query(query as unknown as pg.Submittable)
    return await query.done
  } catch (err) {
    // The server's refusal (a DatabaseError) leaves the connection usable; anything else may not.
    if (!(err instanceof Error && 'severity' in err)) broken = err instanceof Error ? err : new Error(String(err))
    throw err
  } finally {
    client.release(broken)
  }
}
