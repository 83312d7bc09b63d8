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
