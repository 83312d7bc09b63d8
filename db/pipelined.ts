import { createHash } from 'node:crypto'
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
 * parses its own few columns).
 *
 * `prepare`: the statements are named prepared statements on the connection, so that PostgreSQL parses them
 * once and keeps their plan (the upload group statement: its text is the same for any group, its values are
 * array parameters; planning it took a seventh of the database's time per group). The name is a hash of the
 * text, so that a statement of that name on any connection is this text. One not known to be on this connection
 * is closed first (closing none is no error) and parsed; "does not exist" (a connection that lost it: DISCARD,
 * PgBouncer's transaction pooling handing another server connection) or a cached plan refused after a schema
 * change make the batch run again once, parsed anew: nothing of a refused batch was written. Only statements
 * whose text takes a few forms belong here: each form stays prepared on each connection.
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
  close(m: { type: 'P' | 'S'; name?: string }): void
  sync(): void
}

interface Query {
  sql: string
  params: unknown[]
  /** A prepared statement's name (`prepare`). */
  name?: string
}

/** Per connection, the prepared statements it is known to hold (those of batches that completed on it). */
const preparedOn = new WeakMap<Connection, Set<string>>()
/** More forms than this on one connection are a caller's mistake (texts that vary): not kept. */
const MAX_PREPARED = 32
/** A prepared statement gone (26000), or its cached plan refused after a schema change (0A000). */
const STALE_STATEMENT = new Set(['26000', '0A000'])

const names = new Map<string, string>()
function statementName(text: string): string {
  let name = names.get(text)
  if (name === undefined) {
    name = `nowatch_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`
    if (names.size < 1000) names.set(text, name)
  }
  return name
}

class Pipelined {
  readonly done: Promise<TextRow[]>
  private resolve!: (rows: TextRow[]) => void
  private reject!: (err: unknown) => void
  private settled = false
  private names: string[] = []
  private rows: TextRow[] = []
  private connection?: Connection
  /** Statements parsed by this batch under a name, known on the connection once the batch completed. */
  private parsed: string[] = []
  /** The statements' results so far: the last one's rows are the answer. */
  private completed = 0
  callback?: unknown

  constructor(
    private readonly queries: Query[],
    /** Forget the connection's prepared statements first (a retry after one was gone). */
    private readonly forget = false,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }

  submit(connection: Connection): Error | null {
    this.connection = connection
    let known = preparedOn.get(connection)
    if (!known || this.forget) {
      known = new Set()
      preparedOn.set(connection, known)
    }
    connection.stream.cork?.()
    try {
      for (const q of this.queries) {
        if (q.name === undefined) {
          connection.parse({ text: q.sql })
        } else if (!known.has(q.name)) {
          connection.close({ type: 'S', name: q.name })
          connection.parse({ text: q.sql, name: q.name })
          this.parsed.push(q.name)
        }
        connection.bind({ statement: q.name, values: q.params, valueMapper: prepareValue })
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
    if (this.completed === this.queries.length) {
      const known = this.connection && preparedOn.get(this.connection)
      for (const name of this.parsed) if (known && known.size < MAX_PREPARED) known.add(name)
      this.resolve(this.rows)
    } else this.reject(new Error(`pipelined statements: ${this.completed} of ${this.queries.length} completed`))
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

/**
 * Runs `statements` in one round trip and one transaction on a connection of `pool`; the last one's rows.
 * `prepare`: as named prepared statements (see above).
 */
export async function pipelined(
  pool: pg.Pool,
  statements: SQL[],
  options: { prepare?: boolean } = {},
): Promise<TextRow[]> {
  const queries: Query[] = statements.map((s) => {
    const q = dialect.sqlToQuery(s)
    return { sql: q.sql, params: q.params, name: options.prepare ? statementName(q.sql) : undefined }
  })
  const client = await pool.connect()
  let broken: Error | undefined
  const run = (forget: boolean) => {
    const query = new Pipelined(queries, forget)
    client.query(query as unknown as pg.Submittable)
    return query.done
  }
  try {
    if (!options.prepare) return await run(false)
    return await run(false).catch((err) => {
      if (!STALE_STATEMENT.has((err as { code?: string }).code ?? '')) throw err
      return run(true)
    })
  } catch (err) {
    // The server's refusal (a DatabaseError) leaves the connection usable; anything else may not.
    if (!(err instanceof Error && 'severity' in err)) broken = err instanceof Error ? err : new Error(String(err))
    throw err
  } finally {
    client.release(broken)
  }
}
