/**
 * Read replicas benchmark (issue 21). Not a test: figures go to BENCHMARKS.md.
 *
 *   npm run bench:replicas
 *
 * Starts a PostgreSQL 15 primary and a streaming replica of it (pg_basebackup -R) of its own, seeds USERS users
 * with DAYS days of heart rate and steps, then drives the read mix (aggregate, daily statistics, profile) with
 * autocannon against two server processes in turn, alternating ROUNDS times so drift hits both alike:
 *   - "primary": DATABASE_URL only;
 *   - "replica": the same plus DATABASE_REPLICA_URLS (the aggregate and statistics routes read the replica; the
 *     profile, the authentication of every request and the read-your-writes fence lookup stay on the primary).
 * The primary's CPU is read from /proc: the utime+stime of every process of its cluster plus the postmaster's
 * cutime+cstime (backends that exited), before and after each phase; divided by the requests answered.
 * Bounded by BENCH_TIMEOUT_S.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { openDatabase } from '../db/client.ts'
import { type ServerProcess, startCluster, startReplica } from '../test/helpers/processes.ts'
import { benchHarness, seedBenchUsers } from './harness.ts'

const USERS = Number(process.env.BENCH_USERS ?? 8)
const DAYS = Number(process.env.BENCH_DAYS ?? 7)
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 900)
const PASSWORD = 'Bench-Mark-42!'
const TICKS = 100 // USER_HZ on Linux

const bench = benchHarness(TIMEOUT_S)

/** CPU seconds used so far by one cluster: its processes, plus the children its postmaster has reaped. */
function clusterCpuSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue
    }
    // Fields after the command name (which may hold spaces): state ppid … utime(14) stime(15) cutime(16) cstime(17).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const pid = Number(entry)
    const ppid = Number(f[1])
    if (pid === postmaster) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    else if (ppid === postmaster) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks / TICKS
}

async function main() {
  const cluster = await startCluster()
  bench.cleanups.push(() => cluster.destroy())
  const replica = await startReplica(cluster)
  bench.cleanups.push(() => replica.destroy())
  const env = { DATABASE_URL: cluster.url, RATE_LIMIT_ENABLED: 'false', JOBS_ENABLED: 'false', LOG_LEVEL: 'error' }
  // The seeding server is then the "primary alone" server of the comparison.
  const seeder = await bench.server(env)
  const database = await openDatabase({ databaseUrl: cluster.url, poolMax: 2 })
  const names = Array.from({ length: USERS }, (_, u) => `r${u}`)
  const { token: clientToken } = await seedBenchUsers(database, names, {
    password: PASSWORD,
    timeZone: 'Europe/Berlin',
  })
  await database.close()
  const tokens: string[] = []
  for (const name of names) {
    const login = await fetch(`${seeder.url}/v2/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
      body: JSON.stringify({ email: `${name}@bench.local`, password: PASSWORD }),
    })
    const { access } = (await login.json()) as { access: string }
    tokens.push(access)
    // Heart rate every 30 s and steps every 5 minutes for DAYS days before 2026-11-20.
    const start = Date.UTC(2026, 10, 20) - DAYS * 86_400_000
    const samples: Array<{ type: string; timestamp: string; value: number }> = []
    for (let t = start; t < start + DAYS * 86_400_000; t += 30_000) {
      samples.push({ type: 'heart_rate', timestamp: new Date(t).toISOString(), value: 55 + ((t / 30_000) % 40) })
      if (t % 300_000 === 0) samples.push({ type: 'steps', timestamp: new Date(t).toISOString(), value: 20 })
    }
    for (let i = 0; i < samples.length; i += 10_000) {
      const res = await fetch(`${seeder.url}/v1/measurements`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${access}` },
        body: JSON.stringify({ device_id: 'w', samples: samples.slice(i, i + 10_000) }),
      })
      if (res.status !== 200) throw new Error(`seed failed: ${res.status} ${await res.text()}`)
    }
  }
  const seeded = USERS * DAYS * (2880 + 288)
  console.log(`seeded ${USERS} users, ${seeded} samples`)

  const from = new Date(Date.UTC(2026, 10, 20) - DAYS * 86_400_000)
  const day = (d: Date) => d.toISOString().slice(0, 10)
  const paths = [
    `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${from.toISOString()}&to=2026-11-20T00:00:00Z`,
    `/v1/statistics/daily?from=${day(from)}&to=2026-11-19`,
    '/v1/users/me',
  ]
  const requests = tokens.flatMap((token) =>
    paths.map((path) => ({ method: 'GET' as const, path, headers: { authorization: `Bearer ${token}` } })),
  )

  const servers: Record<'primary' | 'replica', ServerProcess> = {
    primary: seeder,
    replica: await bench.server({ ...env, DATABASE_REPLICA_URLS: replica.url, REPLICA_MAX_LAG_S: '30' }),
  }
  // Let the replica catch up with the seed and the fences of the logins expire.
  for (let i = 0; i < 600; i++) {
    const ready = (await (await fetch(`${servers.replica.url}/readyz`)).json()) as {
      replicas: Array<{ state: string }>
    }
    if (ready.replicas[0]?.state === 'up') break
    await new Promise((r) => setTimeout(r, 100))
  }

  const totals = {
    primary: { requests: 0, primaryCpu: 0, replicaCpu: 0, non2xx: 0, p99: [] as number[], rps: [] as number[] },
    replica: { requests: 0, primaryCpu: 0, replicaCpu: 0, non2xx: 0, p99: [] as number[], rps: [] as number[] },
  }
  const replicaData = join(cluster.dir, `replica-${replica.port}`)
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['primary', 'replica'] as const) {
      // Warm-up (pools, caches), not counted.
      await autocannon({ url: servers[kind].url, connections: CONNECTIONS, duration: 2, requests })
      const cpu0 = clusterCpuSeconds(join(cluster.dir, 'data'))
      const rcpu0 = clusterCpuSeconds(replicaData)
      const result = await autocannon({
        url: servers[kind].url,
        connections: CONNECTIONS,
        duration: DURATION_S,
        requests,
      })
      const cpu1 = clusterCpuSeconds(join(cluster.dir, 'data'))
      const rcpu1 = clusterCpuSeconds(replicaData)
      const answered = result.requests.total
      const t = totals[kind]
      t.requests += answered
      t.primaryCpu += cpu1 - cpu0
      t.replicaCpu += rcpu1 - rcpu0
      t.non2xx += result.non2xx + result.errors + result.timeouts
      t.p99.push(result.latency.p99)
      t.rps.push(result.requests.average)
      console.log(
        `round ${round + 1} ${kind}: ${answered} requests, ${result.requests.average} req/s, p99 ${result.latency.p99} ms, ` +
          `primary CPU ${(cpu1 - cpu0).toFixed(2)} s, replica CPU ${(rcpu1 - rcpu0).toFixed(2)} s, non-2xx ${result.non2xx}`,
      )
    }
  }
  const per1000 = (cpu: number, n: number) => ((cpu / n) * 1000).toFixed(3)
  console.log(
    `\nmachine: ${cpus().length} × ${cpus()[0]?.model}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(
    '| servers | requests | req/s (mean of rounds) | p99 ms | primary CPU s / 1,000 req | replica CPU s / 1,000 req | non-2xx |',
  )
  console.log('|---|---|---|---|---|---|---|')
  for (const kind of ['primary', 'replica'] as const) {
    const t = totals[kind]
    const rps = t.rps.reduce((a, b) => a + b, 0) / t.rps.length
    console.log(
      `| ${kind === 'primary' ? 'primary alone' : 'primary + 1 replica'} | ${t.requests} | ${rps.toFixed(0)} | ${Math.max(...t.p99)} | ` +
        `${per1000(t.primaryCpu, t.requests)} | ${per1000(t.replicaCpu, t.requests)} | ${t.non2xx} |`,
    )
  }
  const ratio =
    totals.replica.primaryCpu / totals.replica.requests / (totals.primary.primaryCpu / totals.primary.requests)
  console.log(`\nprimary CPU per request with the replica: ${(ratio * 100).toFixed(0)} % of primary alone`)
}

main().then(
  async () => {
    await bench.cleanUp()
    process.exit(0)
  },
  async (err) => {
    console.error(err)
    await bench.cleanUp()
    process.exit(1)
  },
)
