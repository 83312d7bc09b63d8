/**
 * Measurement hot path benchmark (issue 5). Not a test: figures go to BENCHMARKS.md.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:measurement
 *
 * On PostgreSQL (a scratch database `nowatch_bench_*` created and dropped on the given server):
 *  1. raw COPY of DAYS days of 1 Hz heart rate (10,000-row COPYs, CONCURRENCY connections) for one user;
 *  2. the same rows through HTTP (POST /v1/measurements, 10,000-sample batches, CONCURRENCY clients) for
 *     another user, on a server started here as a child process (loopback only);
 *  3. aggregate queries over those DAYS days at 1h and 1d buckets (p50/p99), the daily statistics, and one
 *     plain scan of the raw rows for comparison.
 * Then 2 and 3 again on PGlite (PGLITE_DAYS days). Everything is bounded by BENCH_TIMEOUT_S.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { type Database, openDatabase, queryRows } from '../db/client.ts'
import { ensurePartitionsBetween } from '../routes/measurement/partitions.ts'
import { benchHarness, benchServerEnv, databaseUrlOrExit, percentile, seedBenchUsers } from './harness.ts'

const BASE_URL = databaseUrlOrExit()
const DAYS = Number(process.env.BENCH_DAYS ?? 30)
const PGLITE_DAYS = Number(process.env.BENCH_PGLITE_DAYS ?? 7)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4)
const QUERY_RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 50)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 900)
const BATCH = 10_000
const T0 = Date.parse('2024-01-01T00:00:00Z')
const PASSWORD = 'Bench-Mark-42!'

const bench = benchHarness(TIMEOUT_S)
const { cleanups } = bench

const hr = (i: number) => 52 + ((i * 7919) % 61) + (i % 4) * 0.25

/** One batch of the series as the JSON body a watch sends. */
function jsonBatch(b: number): string {
  const samples = new Array(BATCH)
  for (let k = 0; k < BATCH; k++) {
    const i = b * BATCH + k
    samples[k] = { type: 'heart_rate', timestamp: new Date(T0 + i * 1000).toISOString(), value: hr(i) }
  }
  return JSON.stringify({ device_id: 'bench-watch', samples })
}

/** The same batch as COPY text rows. */
function copyBatch(b: number, userId: string): string {
  let out = ''
  for (let k = 0; k < BATCH; k++) {
    const i = b * BATCH + k
    out += `${userId}\theart_rate\t${new Date(T0 + i * 1000).toISOString()}\tbench-watch\t${hr(i)}\n`
  }
  return out
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++])
    }),
  )
}

async function startServer(env: Record<string, string>): Promise<string> {
  const server = await bench.server(
    {
      ...benchServerEnv(),
      JOBS_ENABLED: 'false',
      ...env,
    },
    { ready: '/readyz', testDefaults: false },
  )
  return server.url
}

async function login(url: string, token: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v2/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: JSON.stringify({ email: `${name}@bench.local`, password: PASSWORD }),
  })
  if (!res.ok) throw new Error(`login: ${res.status} ${await res.text()}`)
  return `Bearer ${((await res.json()) as { access: string }).access}`
}

async function httpIngest(url: string, auth: string, days: number) {
  const batches = Math.ceil((days * 86400) / BATCH)
  const bodies = Array.from({ length: batches }, (_, b) => jsonBatch(b))
  const started = performance.now()
  let accepted = 0
  await pool(bodies, CONCURRENCY, async (body) => {
    const res = await fetch(`${url}/v1/measurements`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body,
    })
    if (!res.ok) throw new Error(`ingest: ${res.status} ${await res.text()}`)
    accepted += ((await res.json()) as { accepted: number }).accepted
  })
  const seconds = (performance.now() - started) / 1000
  return { samples: accepted, seconds, perSecond: accepted / seconds }
}

async function timedQueries(url: string, auth: string, days: number) {
  const from = new Date(T0).toISOString()
  const to = new Date(T0 + days * 86400_000).toISOString()
  const out: Record<string, { p50: number; p99: number; runs: number; buckets: number }> = {}
  const targets: Record<string, string> = {
    'aggregate 1h': `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${from}&to=${to}`,
    'aggregate 1d': `/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=${from}&to=${to}`,
    'statistics daily': `/v1/statistics/daily?from=2024-01-01&to=${new Date(T0 + (days - 1) * 86400_000).toISOString().slice(0, 10)}`,
  }
  for (const [name, path] of Object.entries(targets)) {
    const times: number[] = []
    let buckets = 0
    for (let i = 0; i < QUERY_RUNS + 3; i++) {
      const t = performance.now()
      const res = await fetch(`${url}${path}`, { headers: { authorization: auth } })
      const body = (await res.json()) as { data: unknown[] }
      if (!res.ok) throw new Error(`${name}: ${res.status} ${JSON.stringify(body)}`)
      if (i >= 3) times.push(performance.now() - t)
      buckets = body.data.length
    }
    times.sort((a, b) => a - b)
    out[name] = { p50: percentile(times, 50), p99: percentile(times, 99), runs: times.length, buckets }
  }
  return out
}

async function benchPostgres() {
  const url = new URL(await bench.scratchDatabase(BASE_URL as string, 'nowatch_bench'))
  const database = await openDatabase({ databaseUrl: url.toString(), poolMax: CONCURRENCY + 2 })
  cleanups.push(() => database.close())
  const { token, ids } = await seedBenchUsers(database, ['copy', 'http'], {
    password: PASSWORD,
    timeZone: 'Europe/Berlin',
  })

  // 1. COPY baseline: the same rows, another user, same table and server, same concurrency.
  const batches = Math.ceil((DAYS * 86400) / BATCH)
  const copyBodies = Array.from({ length: batches }, (_, b) => copyBatch(b, ids.copy))
  await ensurePartitionsBetween(database.db, 'measurements', T0, T0 + DAYS * 86400_000)
  const copyPool = new pg.Pool({ connectionString: url.toString(), max: CONCURRENCY })
  const copyStarted = performance.now()
  await pool(copyBodies, CONCURRENCY, async (body) => {
    const client = await copyPool.connect()
    try {
      const stream = client.query(
        copyFrom('copy measurements (user_id, type, measured_at, device_id, value) from stdin'),
      )
      await pipeline(async function* () {
        yield body
      }, stream)
    } finally {
      client.release()
    }
  })
  const copySeconds = (performance.now() - copyStarted) / 1000
  await copyPool.end()
  const copyRows = batches * BATCH
  // The copied user's rollup too, so the query runs among other users' data in both tables (as ingest keeps it).
  await database.db.execute(sql`
    insert into measurement_quarters (user_id, type, quarter, count, sum, min, max, w0_count, w0_sum, w1_count,
                                      w1_sum, w2_count, w2_sum, minute_mask)
    select user_id, type, date_bin('15 minutes', measured_at, timestamptz '2000-01-01T00:00:00Z'), count(*), sum(value),
           min(value), max(value), 0, 0, 0, 0, 0, 0, 0
      from measurements where user_id = ${ids.copy} group by 1, 2, 3`)
  await database.db.execute(sql`vacuum analyze measurements`)

  // 2. HTTP ingest.
  const server = await startServer({ DATABASE_URL: url.toString(), PG_POOL_MAX: String(CONCURRENCY + 2) })
  const auth = await login(server, token, 'http')
  const ingest = await httpIngest(server, auth, DAYS)
  await database.db.execute(sql`vacuum analyze measurements`)
  await database.db.execute(sql`vacuum analyze measurement_quarters`)

  // 3. Queries, and one plain scan of the raw rows for comparison.
  const queries = await timedQueries(server, auth, DAYS)
  const scanStarted = performance.now()
  await queryRows(
    database.db,
    sql`select (measured_at at time zone 'Europe/Berlin')::date as day, avg(value), min(value), max(value), count(*)
          from measurements where user_id = ${ids.http} and type = 'heart_rate' group by 1`,
  )
  const scanMs = performance.now() - scanStarted
  const [sizes] = await queryRows<{ raw: number; rollup: number }>(
    database.db,
    sql`select (select count(*) from measurements)::int as raw, (select count(*) from measurement_quarters)::int as rollup`,
  )
  return {
    copy: { rows: copyRows, seconds: copySeconds, perSecond: copyRows / copySeconds },
    ingest,
    queries,
    scanMs,
    sizes,
  }
}

async function benchPglite() {
  const dir = mkdtempSync(join(tmpdir(), 'nowatch-bench-pglite-'))
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
  const database = await openDatabase({ dataDir: dir })
  const { token } = await seedBenchUsers(database, ['http'], { password: PASSWORD, timeZone: 'Europe/Berlin' })
  await database.close()
  const server = await startServer({ DATA_DIR: dir })
  const auth = await login(server, token, 'http')
  const ingest = await httpIngest(server, auth, PGLITE_DAYS)
  const queries = await timedQueries(server, auth, PGLITE_DAYS)
  return { ingest, queries }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n.toFixed(1)} ms`

try {
  console.log(
    `machine: ${cpus().length} cpus (${cpus()[0]?.model}), ${fmt(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  )
  console.log(
    `date: ${new Date().toISOString()}; ${DAYS} days of 1 Hz heart rate, batches of ${BATCH}, ${CONCURRENCY} clients\n`,
  )
  const p = await benchPostgres()
  console.log('PostgreSQL')
  console.log(
    `  raw COPY:     ${fmt(p.copy.rows)} rows in ${p.copy.seconds.toFixed(1)} s = ${fmt(p.copy.perSecond)} rows/s`,
  )
  console.log(
    `  HTTP ingest:  ${fmt(p.ingest.samples)} samples in ${p.ingest.seconds.toFixed(1)} s = ${fmt(p.ingest.perSecond)} samples/s (${((100 * p.ingest.perSecond) / p.copy.perSecond).toFixed(0)} % of COPY)`,
  )
  for (const [name, q] of Object.entries(p.queries)) {
    console.log(`  ${name.padEnd(17)} p50 ${ms(q.p50)}, p99 ${ms(q.p99)} (${q.runs} runs, ${q.buckets} rows)`)
  }
  console.log(`  plain scan of the user's raw rows (1d, for comparison): ${ms(p.scanMs)}`)
  console.log(`  table rows: measurements ${fmt(p.sizes.raw)}, measurement_quarters ${fmt(p.sizes.rollup)}`)
  await bench.cleanUp()
  const l = await benchPglite()
  console.log(`PGlite (${PGLITE_DAYS} days)`)
  console.log(
    `  HTTP ingest:  ${fmt(l.ingest.samples)} samples in ${l.ingest.seconds.toFixed(1)} s = ${fmt(l.ingest.perSecond)} samples/s`,
  )
  for (const [name, q] of Object.entries(l.queries)) {
    console.log(`  ${name.padEnd(17)} p50 ${ms(q.p50)}, p99 ${ms(q.p99)} (${q.runs} runs, ${q.buckets} rows)`)
  }
} finally {
  await bench.cleanUp()
  bench.finish()
}
