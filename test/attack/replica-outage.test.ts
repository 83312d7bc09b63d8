import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { HAVE_PG_BINARIES, startCluster, startReplica, startServer } from '../helpers/processes.ts'
import { loginOver, seedUsers } from '../helpers/seed.ts'

// Issue 21: the real server on a primary and a streaming replica of the test's own (pg_basebackup -R).
// The replica is killed (immediate shutdown) under concurrent reads: not one answer may be other than 200;
// it leaves rotation, /readyz says so, and it rejoins once started again.
const skip = !process.env.DATABASE_URL
  ? 'runs in the PostgreSQL suite (DATABASE_URL set)'
  : !HAVE_PG_BINARIES
    ? 'PostgreSQL server binaries not found'
    : false

t.test('a replica killed under load: zero non-2xx, out of rotation, back after restart', { skip }, async (t) => {
  const cluster = await startCluster()
  // One teardown, in this order: the replica's data folder lies inside the cluster's.
  const held: { replica?: Awaited<ReturnType<typeof startReplica>> } = {}
  t.teardown(() => {
    held.replica?.destroy()
    cluster.destroy()
  })
  const replica = await startReplica(cluster)
  held.replica = replica
  const server = await startServer({
    DATABASE_URL: cluster.url,
    DATABASE_REPLICA_URLS: replica.url,
    REPLICA_CHECK_INTERVAL_MS: '200',
    REPLICA_MAX_LAG_S: '5',
    JOBS_ENABLED: 'false',
    RATE_LIMIT_ENABLED: 'false',
  })
  t.teardown(() => server.stop())

  const database = await openDatabase({ databaseUrl: cluster.url, poolMax: 1 })
  const clientToken = await seedUsers(database, ['replica@example.com'], 'replica outage test')
  await database.close()
  const { access } = await loginOver(server.url, clientToken, 'replica@example.com')
  const auth = { authorization: `Bearer ${access}` }
  const samples = Array.from({ length: 600 }, (_, i) => ({
    type: 'heart_rate',
    timestamp: new Date(Date.UTC(2026, 10, 20, 8, 0, i)).toISOString(),
    value: 55 + (i % 30),
  }))
  const upload = await fetch(`${server.url}/v1/measurements`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: 'w', samples }),
  })
  t.equal(upload.status, 200)

  const replicaState = async () => ((await (await fetch(`${server.url}/readyz`)).json()) as ReadyBody).replicas[0]
  interface ReadyBody {
    status: string
    replicas: Array<{ state: string; lag_seconds: number | null }>
  }
  const waitFor = async (state: string) => {
    for (let i = 0; i < 300; i++) {
      if ((await replicaState()).state === state) return true
      await new Promise((r) => setTimeout(r, 100))
    }
    return false
  }
  // Up once the replica has replayed the upload and the fence after it has expired or been passed.
  t.ok(await waitFor('up'), 'the replica joins rotation')

  const paths = [
    '/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z',
    '/v1/statistics/daily?from=2026-11-20&to=2026-11-20',
    '/v1/measurements?type=heart_rate&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&limit=100',
  ]
  async function load(ms: number, workers = 6) {
    const statuses: number[] = []
    const until = Date.now() + ms
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = w; Date.now() < until; i++) {
          const res = await fetch(`${server.url}${paths[i % paths.length]}`, { headers: auth })
          await res.arrayBuffer()
          statuses.push(res.status)
        }
      }),
    )
    return statuses
  }
  const replicaCommits = async () => {
    const c = new pg.Client({ connectionString: replica.url })
    await c.connect()
    try {
      // A backend's statistics reach the view when it goes idle, at most 10 s later (PostgreSQL 15).
      await new Promise((r) => setTimeout(r, 11_000))
      const res = await c.query('select sum(xact_commit)::bigint as n from pg_stat_database')
      return Number(res.rows[0].n)
    } finally {
      await c.end()
    }
  }

  const before = await replicaCommits()
  const warm = await load(1500)
  t.same([...new Set(warm)], [200], `${warm.length} reads before the kill, all 200`)
  t.ok((await replicaCommits()) - before >= warm.length / 2, 'the replica served them')

  const during = load(4000)
  await new Promise((r) => setTimeout(r, 1000))
  replica.stop('immediate')
  const statuses = await during
  const bad = statuses.filter((s) => s !== 200)
  t.same(bad, [], `${statuses.length} reads while the replica died: zero non-2xx`)
  t.match(await replicaState(), { state: 'down' }, '/readyz: out of rotation')
  t.equal(((await (await fetch(`${server.url}/readyz`)).json()) as ReadyBody).status, 'ready')

  replica.start()
  t.ok(await waitFor('up'), 'back in rotation after it started again')
  const rejoined = await replicaCommits()
  const after = await load(1000)
  t.same([...new Set(after)], [200], `${after.length} reads after, all 200`)
  t.ok((await replicaCommits()) - rejoined >= after.length / 2, 'served by the replica again')
})
