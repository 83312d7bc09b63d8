import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { HAVE_PGBOUNCER, startPgBouncer, startServer } from '../helpers/processes.ts'
import { loginOver, seedUsers } from '../helpers/seed.ts'

// Issue 21: two processes booting together through PgBouncer in transaction mode. With a session-level
// pg_advisory_lock the unlock ran on another server connection, leaving the lock held on a pooled
// connection: the next boot hung (or re-entered the lock and migrated alongside another process).
// The pooler is CI's (TEST_PGBOUNCER_URL, in front of DATABASE_URL's cluster) or one of the test's own.
const skip = !process.env.DATABASE_URL
  ? 'runs in the PostgreSQL suite (DATABASE_URL set)'
  : !process.env.TEST_PGBOUNCER_URL && !HAVE_PGBOUNCER
    ? 'no PgBouncer: set TEST_PGBOUNCER_URL or install Debian pgbouncer'
    : false

t.test('two processes boot together through PgBouncer (transaction mode), twice, and serve', { skip }, async (t) => {
  const primary = process.env.DATABASE_URL as string
  const name = `nowatch_bouncer_${Date.now().toString(36)}_${process.pid}`
  const admin = new pg.Client({ connectionString: primary })
  await admin.connect()
  await admin.query(`create database ${name}`)
  t.teardown(async () => {
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.end()
  })
  let pooled: string
  if (process.env.TEST_PGBOUNCER_URL) {
    const u = new URL(process.env.TEST_PGBOUNCER_URL)
    u.pathname = `/${name}`
    pooled = u.toString()
  } else {
    const bouncer = await startPgBouncer(Number(new URL(primary).port || 5432))
    t.teardown(() => bouncer.destroy())
    pooled = bouncer.url(name)
  }
  const env = { DATABASE_URL: pooled, JOBS_ENABLED: 'true', RATE_LIMIT_ENABLED: 'false', PG_POOL_MAX: '5' }
  const advisoryLocks = async () =>
    (
      await admin.query(
        `select count(*)::int as n from pg_locks l join pg_database d on d.oid = l.database
          where l.locktype = 'advisory' and d.datname = $1`,
        [name],
      )
    ).rows[0].n as number

  const direct = primary.replace(/\/[^/]*$/, `/${name}`)
  const rounds: Array<[string, Record<string, string>]> = [
    ['first boot (migrates)', env],
    ['rolling restart, migrations over DATABASE_DIRECT_URL', { ...env, DATABASE_DIRECT_URL: direct }],
  ]
  let running: Awaited<ReturnType<typeof startServer>>[] = []
  t.teardown(() => Promise.all(running.map((s) => s.stop())))
  for (const [round, roundEnv] of rounds) {
    await Promise.all(running.map((s) => s.stop()))
    running = await Promise.all([
      startServer(roundEnv, { ready: '/readyz' }),
      startServer(roundEnv, { ready: '/readyz' }),
    ])
    t.pass(`${round}: both processes ready`)
    t.equal(await advisoryLocks(), 0, `${round}: no advisory lock left held on a pooled server connection`)
  }

  // And the server works through the pooler: login, upload, read back, on the two processes of the last round.
  const [a, b] = running as [Awaited<ReturnType<typeof startServer>>, Awaited<ReturnType<typeof startServer>>]
  const database = await openDatabase({ databaseUrl: direct, poolMax: 1 })
  const clientToken = await seedUsers(database, ['bouncer@example.com'], 'pgbouncer test')
  await database.close()
  const { access } = await loginOver(a.url, clientToken, 'bouncer@example.com')
  const auth = { authorization: `Bearer ${access}` }
  const samples = Array.from({ length: 50 }, (_, i) => ({
    type: 'heart_rate',
    timestamp: new Date(Date.UTC(2026, 10, 20, 8, 0, i)).toISOString(),
    value: 60 + (i % 10),
  }))
  const upload = await fetch(`${b.url}/v1/measurements`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: 'watch-1', samples }),
  })
  t.same(await upload.json(), { accepted: 50, duplicates: 0 })
  const aggregate = await fetch(
    `${a.url}/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z`,
    { headers: auth },
  )
  t.equal(aggregate.status, 200)
  t.match(await aggregate.json(), { data: [{ count: 50, min: 60, max: 69 }] })

  // Live minutes take the group statement, a named prepared statement (DATABASE_PREPARED_STATEMENTS): with
  // server_round_robin the next upload lands on a server connection that lacks it, and must still be stored once.
  const minute = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000
  const live = (k: number) =>
    Array.from({ length: 10 }, (_, i) => ({
      type: 'heart_rate',
      timestamp: new Date(minute + (k * 10 + i) * 1000).toISOString(),
      value: 70 + k,
    }))
  const send = async (k: number) =>
    (
      await fetch(`${b.url}/v1/measurements`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: 'watch-1', samples: live(k) }),
      })
    ).json()
  const answers = []
  for (let k = 0; k < 8; k++) answers.push(await send(k))
  t.same(answers, Array(8).fill({ accepted: 10, duplicates: 0 }), 'each live upload stored')
  t.same(await send(3), { accepted: 0, duplicates: 10 }, 'a re-send: duplicates, through the pooler too')
  const from = new Date(minute).toISOString()
  const to = new Date(minute + 80_000).toISOString()
  const listed = await fetch(`${a.url}/v1/measurements?type=heart_rate&from=${from}&to=${to}&limit=1000`, {
    headers: auth,
  })
  t.equal(((await listed.json()) as { data: unknown[] }).data.length, 80, 'every sample once')
})
