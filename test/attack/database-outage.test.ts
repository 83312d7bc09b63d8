import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { HAVE_PGBOUNCER, HAVE_PG_BINARIES, startCluster, startPgBouncer, startServer } from '../helpers/processes.ts'
import { loginOver, seedUsers } from '../helpers/seed.ts'

// The real server as a child process on a PostgreSQL cluster of the test's own, which is stopped
// under load and started again. Runs in the PostgreSQL suite (it needs the server binaries).
const skip = !process.env.DATABASE_URL
  ? 'runs in the PostgreSQL suite (DATABASE_URL set)'
  : !HAVE_PG_BINARIES
    ? 'PostgreSQL server binaries not found'
    : false

t.test(
  'PostgreSQL stops under load: fast 503s, not ready, then serving again without a restart',
  { skip },
  async (t) => {
    const cluster = await startCluster()
    t.teardown(() => cluster.destroy())
    // CI's PgBouncer pass (TEST_VIA_PGBOUNCER=1): the server reaches its cluster through a PgBouncer of the
    // test's own in transaction mode; the pooler stays up while PostgreSQL goes away.
    let databaseUrl = cluster.url
    if (process.env.TEST_VIA_PGBOUNCER === '1') {
      if (!HAVE_PGBOUNCER) throw new Error('TEST_VIA_PGBOUNCER=1 but no pgbouncer binary')
      const bouncer = await startPgBouncer(cluster.port)
      t.teardown(() => bouncer.destroy())
      databaseUrl = bouncer.url()
    }
    const server = await startServer({
      DATABASE_URL: databaseUrl,
      JOBS_ENABLED: 'false',
      RATE_LIMIT_ENABLED: 'false',
      SESSION_CACHE_TTL_MS: '0',
    })
    t.teardown(() => server.stop())

    const database = await openDatabase({ databaseUrl: cluster.url, poolMax: 1 })
    const clientToken = await seedUsers(database, ['outage@example.com'], 'outage test')
    await database.close()

    const { access } = await loginOver(server.url, clientToken, 'outage@example.com')

    /** Concurrent authenticated reads for a while; every answer's status, body and time. */
    async function load(ms: number, workers = 6) {
      const results: Array<{ status: number; error?: string; retryAfter: string | null; took: number }> = []
      const until = Date.now() + ms
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (Date.now() < until) {
            const started = Date.now()
            const res = await fetch(`${server.url}/v1/users/me/auth-history?limit=5`, {
              headers: { authorization: `Bearer ${access}` },
            })
            const body = (await res.json()) as { error?: string }
            results.push({
              status: res.status,
              error: body.error,
              retryAfter: res.headers.get('retry-after'),
              took: Date.now() - started,
            })
          }
        }),
      )
      return results
    }

    const before = await load(1000)
    t.ok(
      before.length > 0 && before.every((r) => r.status === 200),
      `all ${before.length} requests served before the outage`,
    )

    const during = load(4000)
    await new Promise((r) => setTimeout(r, 500))
    cluster.stop('fast')
    const results = await during
    const failed = results.filter((r) => r.status !== 200)
    t.ok(failed.length > 0, `${failed.length} of ${results.length} requests met the outage`)
    const kinds = [...new Set(failed.map((r) => `${r.status} ${r.error} retry-after=${r.retryAfter}`))]
    t.same(kinds, ['503 database_unavailable retry-after=5'], 'each is 503 database_unavailable with Retry-After')
    t.ok(Math.max(...results.map((r) => r.took)) < 10_000, 'no request hangs')

    const ready = await fetch(`${server.url}/readyz`)
    t.equal(ready.status, 503)
    t.same(await ready.json(), { error: 'not_ready', message: 'The database is not reachable.' })
    t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the process itself is alive')

    cluster.start()
    const deadline = Date.now() + 30_000
    while ((await fetch(`${server.url}/readyz`)).status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
    }
    t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready again')
    const after = await load(1000)
    t.ok(
      after.length > 0 && after.every((r) => r.status === 200),
      `all ${after.length} requests served after the outage`,
    )
    t.equal(server.child.exitCode, null, 'the same process, never restarted')
  },
)
