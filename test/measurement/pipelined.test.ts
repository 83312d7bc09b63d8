import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { pipelined } from '../../db/pipelined.ts'
import { buildTestApp } from '../helpers/app.ts'

// db/pipelined.ts, the one round trip of an upload on PostgreSQL: the statements are one transaction (all or
// nothing), each statement sees what committed before it began (so a lock taken by the first really fences what
// the second reads), and the connection serves again after a refusal.

const skip = process.env.DATABASE_URL ? false : 'PostgreSQL only (DATABASE_URL is not set): PGlite has no wire protocol'

t.test('pipelined statements: one transaction, a snapshot per statement', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const pool = app.database.pool as pg.Pool
  await app.db.execute(sql`create table pipelined_probe (id int primary key, note text)`)
  const ids = async () =>
    (await queryRows<{ id: number }>(app.db, sql`select id from pipelined_probe order by id`)).map((r) => r.id)

  const rows = await pipelined(pool, [
    sql`insert into pipelined_probe values (${1}, ${"it's"})`,
    sql`select id::text as id, note, null::text as nothing from pipelined_probe where id = any(${sql.param([1, 2])}::int[])`,
  ])
  t.same(rows, [{ id: '1', note: "it's", nothing: null }], 'the last statement sees the first; rows as text')

  // A refusal in the second statement takes the first one's write with it.
  await t.rejects(
    pipelined(pool, [
      sql`insert into pipelined_probe values (${2}, 'a')`,
      sql`insert into pipelined_probe values (1, 'b')`,
    ]),
    { code: '23505' },
  )
  t.same(await ids(), [1], 'nothing of the failed batch stays')
  await t.rejects(pipelined(pool, [sql`select 1`, sql`select * from no_such_table`]), { code: '42P01' })

  // Each statement its own snapshot: the second reads what committed while the first waited for its lock.
  const other = new pg.Client({
    connectionString: (pool as unknown as { options: { connectionString: string } }).options.connectionString,
  })
  await other.connect()
  t.teardown(() => other.end())
  await other.query('begin')
  await other.query('select pg_advisory_xact_lock(4242, 1)')
  const waiting = pipelined(pool, [
    sql`select pg_advisory_xact_lock_shared(4242, 1)`,
    sql`select count(*)::text as n from pipelined_probe`,
  ])
  await new Promise((r) => setTimeout(r, 200))
  await other.query(`insert into pipelined_probe values (3, 'committed while waiting')`)
  await other.query('commit')
  t.same(await waiting, [{ n: '2' }], 'the row committed before the lock was granted is seen')

  // The pool's connections serve again after the refusals.
  for (let i = 0; i < 25; i++) {
    t.same(await pipelined(pool, [sql`select ${i}::int::text as i`]), [{ i: String(i) }])
  }
})

t.test('prepared: parsed once per connection, and again where the connection lost it', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const url = (app.database.pool as unknown as { options: { connectionString: string } }).options.connectionString
  // One connection, so that what the statements prepared can be looked at from the same session.
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  t.teardown(() => pool.end())
  const prepared = async () =>
    (
      await pool.query<{ statement: string }>(
        `select statement from pg_prepared_statements where name like 'nowatch\\_%' order by statement`,
      )
    ).rows.map((r) => r.statement)
  const divide = (by: number) => [sql`select ${by}::int::text as by`, sql`select (12 / ${by}::int)::text as q`]

  t.same(await pipelined(pool, divide(3), { prepare: true }), [{ q: '4' }])
  t.same(await pipelined(pool, divide(4), { prepare: true }), [{ q: '3' }], 'other values, the same statements')
  t.same(
    await prepared(),
    ['select $1::int::text as by', 'select (12 / $1::int)::text as q'],
    'each text prepared once, with its parameters',
  )

  // A refused batch: the first statement ran, the second failed; what it prepared is parsed again next time
  // (closed first: a second Parse of the same name would be refused).
  await t.rejects(pipelined(pool, divide(0), { prepare: true }), { code: '22012' })
  t.same(await pipelined(pool, divide(6), { prepare: true }), [{ q: '2' }], 'after a refusal')

  // The session lost its statements (DISCARD ALL, or PgBouncer handing over another server connection).
  await pool.query('deallocate all')
  t.same(await prepared(), [])
  t.same(await pipelined(pool, divide(2), { prepare: true }), [{ q: '6' }], 'prepared again at once')
  t.equal((await prepared()).length, 2)

  // Unnamed statements leave nothing behind.
  await pool.query('deallocate all')
  t.same(await pipelined(pool, divide(1)), [{ q: '12' }])
  t.same(await prepared(), [])
})
