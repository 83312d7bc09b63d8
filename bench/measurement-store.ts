import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
/**
 * The measurement store against the goals of issue 23. Not a test: figures go to BENCHMARKS.md.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:store
 *
 * One run, PostgreSQL (a scratch database `nowatch_bench_*` created and dropped) and then PGlite beside it:
 *  1. baseline: raw COPY of the 1 Hz heart rate of USERS users over HOURS hours into a plain row table of the
 *     old layout (the same columns and primary key, no rollup), 10,000-row COPYs on CONCURRENCY connections;
 *     and the same shape as the live HTTP batches of step 2: USERS clients at once, each COPYing its own user's
 *     60-row batches (one COPY, hence one transaction, each) into the same table, SMALL_BATCHES each, in
 *     SMALL_ROUNDS rounds (default 3) that alternate with the HTTP rounds of step 2, each HTTP round read
 *     against the COPY round just before it and the round of the median ratio reported as the shape's. The goal
 *     (HTTP ≥ 50 % of COPY) is read per shape (issue 23b): 10,000-sample HTTP batches against the 10,000-row
 *     COPYs, 60-sample HTTP batches against the 60-row COPYs (`ingestRatios`; the 60-sample batches against
 *     the large COPYs, the reading before, is printed too). A 60-sample batch cannot be as cheap per sample as
 *     a 10,000-row COPY whatever the server does: comparing those measures the batch size, not the server;
 *  2. the same samples through HTTP (POST /v1/measurements, 10,000-sample batches), first by a server with the
 *     defaults for other users: these hours are closed, so they go straight into blocks (direct-blocks.ts; those
 *     users' samples are deleted after); then by a server with MEASUREMENT_INGEST_BLOCKS=false (the row path, as
 *     before, which the later steps measure), and USERS users sending 60-sample batches (a minute each, as a watch
 *     syncing live: open hours, the row path in either setting) for SMALL_BATCHES each, in SMALL_ROUNDS rounds
 *     after the one with MEASUREMENT_GROUP_COMMIT=0 (`ingestSmallOneByOne`, against the median round's COPY);
 *     each COPY and HTTP phase also reports the CPU it cost per million samples (this process, the server, the
 *     database's backends: `cpuSecondsPerMillion`) and `cpuRatios` compares those, a figure a loaded machine moves less;
 *     BENCH_INGEST_ONLY=1 stops after this step (short before/after runs of the ingest path);
 *     BENCH_SERVER_NODE_OPTIONS goes to the server (`--import=./bench/server-cpu-profile.mjs` profiles it;
 *     node refuses --cpu-prof in NODE_OPTIONS);
 *  3. raw range reads (GET /v1/measurements, 10,000 a page) from the row table, compaction
 *     (compactMeasurements, as `npm run cli -- measurements compact`), the same reads from the blocks;
 *  4. storage all-in (tables, indexes, TOAST of measurements, measurement_quarters, measurement_blocks) per
 *     sample, against the plain table of step 1; block bytes per sample for float types (skin temperature
 *     with two decimals, HRV as arbitrary doubles);
 *  5. one user with YEAR_DAYS days (heart rate every YEAR_HR_STEP_S s, steps and skin temperature every 5 minutes),
 *     compacted: aggregate?bucket=1d and statistics/daily over the whole range, p50/p99 over QUERY_RUNS.
 * Values are seeded random walks (a periodic pattern would compress unfairly well). Bounded by BENCH_TIMEOUT_S.
 */
import http from 'node:http'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { type Database, openDatabase, openDatabaseForCli, queryRows } from '../db/client.ts'
import { compactMeasurements } from '../routes/measurement/compaction.ts'
import { createMeasurementRepository } from '../routes/measurement/repository.ts'
import { benchHarness, benchServerEnv, databaseUrlOrExit, percentile, seedBenchUsers } from './harness.ts'

const BASE_URL = databaseUrlOrExit()
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const SIZES = {
  postgres: {
    users: env('BENCH_USERS', 50),
    hours: env('BENCH_HOURS', 24),
    smallBatches: env('BENCH_SMALL_BATCHES', 60),
    yearDays: env('BENCH_YEAR_DAYS', 365),
    yearHeartRateStepS: env('BENCH_YEAR_HR_STEP_S', 30),
  },
  pglite: {
    users: env('BENCH_PGLITE_USERS', 10),
    hours: env('BENCH_PGLITE_HOURS', 6),
    smallBatches: env('BENCH_PGLITE_SMALL_BATCHES', 20),
    yearDays: env('BENCH_PGLITE_YEAR_DAYS', 365),
    yearHeartRateStepS: env('BENCH_PGLITE_YEAR_HR_STEP_S', 60),
  },
}
const CONCURRENCY = env('BENCH_CONCURRENCY', 4)
/** Rounds of 60-row COPYs and 60-sample HTTP batches, alternating (PostgreSQL). */
const SMALL_ROUNDS = env('BENCH_SMALL_ROUNDS', 3)
const QUERY_RUNS = env('BENCH_QUERY_RUNS', 30)
const TIMEOUT_S = env('BENCH_TIMEOUT_S', 3000)
const BATCH = 10_000
const T0 = Date.parse('2025-01-06T00:00:00Z')
const PASSWORD = 'Bench-Mark-42!'
const ZONE = 'Asia/Kathmandu'

const bench = benchHarness(TIMEOUT_S)
const { cleanups } = bench

/** A seeded random walk of integers in [lo, hi], one step of -1, 0 or +1 per sample. */
function walk(seed: number, lo: number, hi: number) {
  let s = seed >>> 0 || 1
  let v = Math.round((lo + hi) / 2)
  return () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0
    v = Math.max(lo, Math.min(hi, v + ((s >>> 16) % 3) - 1))
    return v
  }
}

interface Series {
  type: string
  start: number
  count: number
  stepMs: number
  value: (i: number) => number
}

/** Bodies of `size`-sample batches of the series, in time order. */
function* batches(series: Series, size: number, deviceId = 'watch'): Generator<string> {
  for (let b = 0; b * size < series.count; b++) {
    const samples = []
    for (let i = b * size; i < Math.min(series.count, (b + 1) * size); i++) {
      samples.push({
        type: series.type,
        timestamp: new Date(series.start + i * series.stepMs).toISOString(),
        value: series.value(i),
      })
    }
    yield JSON.stringify({ device_id: deviceId, samples })
  }
}

/** A user's 1 Hz heart rate: values precomputed so that COPY and HTTP send the same numbers. */
function heartRate(seed: number, start: number, count: number): Series {
  const next = walk(seed, 45, 150)
  const values = Array.from({ length: count }, () => next())
  return { type: 'heart_rate', start, count, stepMs: 1000, value: (i) => values[i] }
}

const randomUuid = () =>
  randomBytes(16)
    .toString('hex')
    .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')

/** COPY text bodies of `size`-row batches of the series for one user, in time order. */
function* copyBatches(userId: string, s: Series, size: number): Generator<string> {
  for (let b = 0; b * size < s.count; b++) {
    let body = ''
    for (let i = b * size; i < Math.min(s.count, (b + 1) * size); i++) {
      body += `${userId}\t${s.type}\t${new Date(s.start + i * s.stepMs).toISOString()}\twatch\t${s.value(i)}\n`
    }
    yield body
  }
}

async function pool<T>(items: Iterable<T>, concurrency: number, work: (item: T) => Promise<void>) {
  const it = items[Symbol.iterator]()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let n = it.next(); !n.done; n = it.next()) await work(n.value)
    }),
  )
}

async function startServer(
  serverEnv: Record<string, string>,
): Promise<{ url: string; pid?: number; stop: () => Promise<void> }> {
  const server = await bench.server(
    {
      ...benchServerEnv(),
      JOBS_ENABLED: 'false',
      MEASUREMENT_BATCH_LIMIT: String(BATCH),
      // Measure throughput, not the load shedding of a shared machine (under-pressure's 503s).
      MAX_EVENT_LOOP_DELAY_MS: '0',
      // e.g. `--import=./bench/server-cpu-profile.mjs` to profile the server under the bench's load.
      ...(process.env.BENCH_SERVER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVER_NODE_OPTIONS } : {}),
      // Upload statements in flight per server (group commit); unset: the server's default.
      ...(process.env.BENCH_GROUP_COMMIT ? { MEASUREMENT_GROUP_COMMIT: process.env.BENCH_GROUP_COMMIT } : {}),
      ...serverEnv,
    },
    { ready: '/readyz', testDefaults: false },
  )
  return {
    url: server.url,
    pid: server.child.pid,
    stop: async () => {
      await server.stop()
    },
  }
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

/**
 * The uploads go through node:http with kept-alive sockets, not fetch: fetch's WHATWG streams cost the bench's
 * clients about three times the CPU per request, on the same two cores as the server and PostgreSQL (the COPY
 * clients are the pg driver, as lean). What a phone's HTTP stack spends is not the server's cost.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
cleanups.push(async () => agent.destroy())

async function post(url: string, auth: string, body: string): Promise<number> {
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      `${url}/v1/measurements`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: auth },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
  if (status < 200 || status > 299) throw new Error(`ingest: ${status} ${text}`)
  return (JSON.parse(text) as { accepted: number }).accepted
}

/** CPU seconds (user + system) that process `pid` of this machine has used; 0 once it is gone. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/**
 * The CPU a phase costs, in seconds per million samples, on a machine whose load makes wall-clock rates swing:
 * this process (the clients), the API server and the PostgreSQL backends serving the scratch database (PGlite
 * runs inside the server). Backends are listed before and after; one that starts during the phase counts whole.
 */
async function cpuOf<T extends { samples?: number; rows?: number }>(
  parts: { server?: number; database?: Database },
  work: () => Promise<T>,
): Promise<T & { cpuSecondsPerMillion: Record<string, number> }> {
  const backends = async () =>
    parts.database && parts.database.via === 'postgres'
      ? (
          await queryRows<{ pid: number }>(
            parts.database.db,
            sql`select pid from pg_stat_activity where datname = current_database()`,
          )
        ).map((r) => Number(r.pid))
      : []
  const before = new Map<number, number>()
  for (const pid of await backends()) before.set(pid, processCpuSeconds(pid))
  const server0 = parts.server ? processCpuSeconds(parts.server) : 0
  const bench0 = process.cpuUsage()
  const result = await work()
  const bench1 = process.cpuUsage(bench0)
  const server = parts.server ? processCpuSeconds(parts.server) - server0 : 0
  let postgres = 0
  for (const pid of new Set([...before.keys(), ...(await backends())])) {
    postgres += Math.max(0, processCpuSeconds(pid) - (before.get(pid) ?? 0))
  }
  const clients = (bench1.user + bench1.system) / 1e6
  const perMillion = 1e6 / (result.samples ?? result.rows ?? 1)
  const round = (x: number) => Math.round(x * perMillion * 100) / 100
  return {
    ...result,
    cpuSecondsPerMillion: {
      clients: round(clients),
      server: round(server),
      postgres: round(postgres),
      total: round(clients + server + postgres),
    },
  }
}

/** A phase's rate and its CPU (cpuOf). */
interface CpuMeasured {
  seconds: number
  perSecond: number
  cpuSecondsPerMillion: Record<string, number>
}

/** Every user's bodies sent at once, each user's in order: answers samples/s. */
async function ingestAll(url: string, auths: string[], bodies: (u: number) => Iterable<string>, concurrency?: number) {
  const started = performance.now()
  let accepted = 0
  const jobs = auths.map((auth, u) => ({ auth, bodies: bodies(u) }))
  await pool(jobs, concurrency ?? jobs.length, async (job) => {
    for (const body of job.bodies) {
      const n = await post(url, job.auth, body)
      accepted += n
    }
  })
  const seconds = (performance.now() - started) / 1000
  return { samples: accepted, seconds, perSecond: accepted / seconds }
}

async function timed(url: string, auth: string, path: string, runs: number) {
  const times: number[] = []
  let rows = 0
  for (let i = 0; i < runs + 2; i++) {
    const t = performance.now()
    const res = await fetch(`${url}${path}`, { headers: { authorization: auth } })
    const body = (await res.json()) as { data: unknown[] }
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
    if (i >= 2) times.push(performance.now() - t)
    rows = body.data.length
  }
  times.sort((a, b) => a - b)
  return { p50: percentile(times, 50), p99: percentile(times, 99), runs: times.length, rows }
}

/** p50 time per 10,000 samples of raw pages (limit 10,000) at several places of several users' data. */
async function rawReads(url: string, auths: string[], hours: number) {
  const paths: Array<[string, string]> = []
  for (let u = 0; u < Math.min(5, auths.length); u++) {
    for (let k = 0; k < 4; k++) {
      const from = new Date(T0 + ((k * hours) / 4) * 3600_000 + 1234).toISOString()
      paths.push([auths[u], `/v1/measurements?type=heart_rate&from=${from}&limit=10000`])
    }
  }
  const times: number[] = []
  for (let round = 0; round < 3; round++) {
    for (const [auth, path] of paths) {
      const t = performance.now()
      const res = await fetch(`${url}${path}`, { headers: { authorization: auth } })
      const body = (await res.json()) as { data: unknown[] }
      if (!res.ok || body.data.length === 0) throw new Error(`raw read: ${res.status}`)
      // Per 10,000 samples (a page near the end of a short series holds fewer).
      if (round > 0) times.push(((performance.now() - t) * 10_000) / body.data.length)
    }
  }
  times.sort((a, b) => a - b)
  return { p50: percentile(times, 50), runs: times.length }
}

async function storeBytes(db: Database['db']) {
  const [row] = await queryRows<{ rows: number; quarters: number; blocks: number; samples: number }>(
    db,
    sql`select
      -- A partitioned table is the sum of its partitions (pg_partition_tree lists nothing for a plain table).
      greatest((select coalesce(sum(pg_total_relation_size(relid)), 0) from pg_partition_tree('measurements')),
               pg_total_relation_size('measurements'))::float8 as rows,
      pg_total_relation_size('measurement_quarters')::float8 as quarters,
      greatest((select coalesce(sum(pg_total_relation_size(relid)), 0) from pg_partition_tree('measurement_blocks')),
               pg_total_relation_size('measurement_blocks'))::float8 as blocks,
      ((select count(*) from measurements) + (select coalesce(sum(count), 0) from measurement_blocks))::float8 as samples`,
  )
  return row
}

async function scenario(kind: 'postgres' | 'pglite') {
  const size = SIZES[kind]
  const names = [
    ...Array.from({ length: size.users }, (_, u) => `u${u}`),
    ...Array.from({ length: size.users }, (_, u) => `d${u}`),
    'floats',
    'year',
    'copy',
  ]
  let database: Database
  let serverEnv: Record<string, string>
  let copyUrl: string | undefined
  if (kind === 'postgres') {
    copyUrl = await bench.scratchDatabase(BASE_URL, 'nowatch_bench_store')
    database = await openDatabase({ databaseUrl: copyUrl, poolMax: CONCURRENCY + 2 })
    serverEnv = { DATABASE_URL: copyUrl, PG_POOL_MAX: '20' }
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'nowatch-bench-pglite-'))
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
    database = await openDatabase({ dataDir: dir })
    serverEnv = { DATA_DIR: dir }
  }
  const { token, ids } = await seedBenchUsers(database, names, { password: PASSWORD, timeZone: ZONE })
  // The `d` users serve the phases measured by a second server; their samples are deleted after each, so that
  // the steps after ingest (reads, compaction, storage) measure the `u` users' samples only.
  const otherIds = sql`${sql.param(Array.from({ length: size.users }, (_, u) => ids[`d${u}`]))}::uuid[]`
  const forgetOthers = async (db: Database) => {
    for (const table of ['measurements', 'measurement_blocks', 'measurement_quarters', 'change_log']) {
      await db.db.execute(sql`delete from ${sql.identifier(table)} where user_id = any(${otherIds})`)
    }
  }
  const hrOf = (u: number) => heartRate(u + 1, T0, size.hours * 3600)
  // The live minutes after the bulk hours: 60-sample batches, the same for COPY and HTTP.
  const liveStart = T0 + size.hours * 3600_000
  // Round r (SMALL_ROUNDS) sends the minutes after round r - 1's.
  const liveHeartRateOf = (u: number, round: number) =>
    heartRate(1000 + u + 100 * round, liveStart + round * size.smallBatches * 60_000, size.smallBatches * 60)
  // Each figure is printed as it is measured, so a failure later keeps what was measured.
  const out = new Proxy<Record<string, unknown>>(
    { sizes: size },
    {
      set(target, key, value) {
        target[key as string] = value
        console.log(`${kind} ${String(key)}: ${JSON.stringify(value)}`)
        bench.step(`${kind}, after ${String(key)}`)
        return true
      },
    },
  )

  // 1. COPY baseline into a plain table of the old row layout (PostgreSQL only: PGlite has no COPY FROM STDIN here).
  // The 60-row COPYs run later, in rounds that alternate with the 60-sample HTTP batches (step 2).
  let copySmallRound: ((round: number) => Promise<CpuMeasured>) | undefined
  if (kind === 'postgres' && copyUrl) {
    await database.db.execute(sql`
      create table bench_plain (user_id uuid not null, type text not null, measured_at timestamptz(3) not null,
        device_id text not null default '', value float8 not null,
        primary key (user_id, type, measured_at, device_id))`)
    const copyPool = new pg.Pool({ connectionString: copyUrl, max: CONCURRENCY })
    function* copyBodies() {
      for (let u = 0; u < size.users; u++) yield* copyBatches(randomUuid(), hrOf(u), BATCH)
    }
    const started = performance.now()
    let rows = 0
    const copyCpu = await cpuOf({ database }, async () => {
      await pool(copyBodies(), CONCURRENCY, async (body) => {
        const client = await copyPool.connect()
        try {
          await pipeline(
            async function* () {
              yield body
            },
            client.query(copyFrom('copy bench_plain (user_id, type, measured_at, device_id, value) from stdin')),
          )
          rows += BATCH
        } finally {
          client.release()
        }
      })
      return { rows }
    })
    const seconds = (performance.now() - started) / 1000
    await copyPool.end()
    await database.db.execute(sql`vacuum analyze bench_plain`)
    const [plain] = await queryRows<{ bytes: number; n: number }>(
      database.db,
      sql`select pg_total_relation_size('bench_plain')::float8 as bytes, (select count(*) from bench_plain)::float8 as n`,
    )
    out.copy = {
      rows: plain.n,
      seconds,
      perSecond: plain.n / seconds,
      bytesPerSample: plain.bytes / plain.n,
      cpuSecondsPerMillion: copyCpu.cpuSecondsPerMillion,
    }
    copySmallRound = async (round: number) => {
      // The same shape as HTTP's live batches (issue 23b): USERS clients at once, each COPYing its own user's
      // 60-row batches, one transaction each, into the table the large COPYs filled.
      // Connections are opened before the clock starts, as the HTTP clients' are kept alive.
      const smallPool = new pg.Pool({ connectionString: copyUrl, max: size.users })
      const clients = await Promise.all(Array.from({ length: size.users }, () => smallPool.connect()))
      const smallStarted = performance.now()
      let smallRows = 0
      const smallCpu = await cpuOf({ database }, async () => {
        await Promise.all(
          clients.map(async (client, u) => {
            const userId = randomUuid()
            try {
              for (const body of copyBatches(userId, liveHeartRateOf(u, round), 60)) {
                await pipeline(
                  async function* () {
                    yield body
                  },
                  client.query(copyFrom('copy bench_plain (user_id, type, measured_at, device_id, value) from stdin')),
                )
                smallRows += 60
              }
            } finally {
              client.release()
            }
          }),
        )
        return { rows: smallRows }
      })
      const smallSeconds = (performance.now() - smallStarted) / 1000
      await smallPool.end()
      return {
        rows: smallRows,
        seconds: smallSeconds,
        perSecond: smallRows / smallSeconds,
        cpuSecondsPerMillion: smallCpu.cpuSecondsPerMillion,
      }
    }
  }
  if (kind === 'pglite') await database.close()

  // 2a. HTTP ingest of the same 10,000-sample batches, for other users, by a server with the defaults: these hours
  // are closed, so they go straight into blocks (routes/measurement/direct-blocks.ts). Then those users' samples
  // are deleted and that server stopped (PGlite: one process per folder), so that the steps below measure the row
  // path as before (the main server has MEASUREMENT_INGEST_BLOCKS=false): row reads, compaction, storage.
  {
    const direct = await startServer(serverEnv)
    const directAuths: string[] = []
    for (let u = 0; u < size.users; u++) directAuths.push(await login(direct.url, token, `d${u}`))
    out.ingestLargeBlocks = await cpuOf(
      { server: direct.pid, database: kind === 'postgres' ? database : undefined },
      () => ingestAll(direct.url, directAuths, (u) => batches(hrOf(u), BATCH), CONCURRENCY),
    )
    await direct.stop()
    const db = kind === 'postgres' ? database : await openDatabase({ dataDir: serverEnv.DATA_DIR })
    await forgetOthers(db)
    if (kind === 'pglite') await db.close()
  }

  const main = await startServer({ ...serverEnv, MEASUREMENT_INGEST_BLOCKS: 'false' })
  const server = main.url
  const auths: string[] = []
  for (let u = 0; u < size.users; u++) auths.push(await login(server, token, `u${u}`))
  const store = kind === 'postgres' ? database : await openDatabaseForCli({ dataDir: serverEnv.DATA_DIR })
  if (kind === 'pglite') cleanups.push(() => store.close())

  // 2. HTTP ingest through the row table: 10,000-sample batches (CONCURRENCY users at a time), then 60-sample batches
  // (all users at once; live minutes, open hours: the row path in either setting).
  const cpuParts = { server: main.pid, database: kind === 'postgres' ? database : undefined }
  out.ingestLarge = await cpuOf(cpuParts, () => ingestAll(server, auths, (u) => batches(hrOf(u), BATCH), CONCURRENCY))
  if (kind === 'postgres') {
    // The same live minutes without the group commit (MEASUREMENT_GROUP_COMMIT=0: a statement per upload, as
    // before it), by a second server for the other users, whose rows are deleted after: the same-run baseline.
    const alone = await startServer({ ...serverEnv, MEASUREMENT_INGEST_BLOCKS: 'false', MEASUREMENT_GROUP_COMMIT: '0' })
    const aloneAuths: string[] = []
    for (let u = 0; u < size.users; u++) aloneAuths.push(await login(alone.url, token, `d${u}`))
    out.ingestSmallOneByOne = await cpuOf({ server: alone.pid, database }, () =>
      ingestAll(alone.url, aloneAuths, (u) => batches(liveHeartRateOf(u, 0), 60)),
    )
    await alone.stop()
    await forgetOthers(database)
  }
  // The 60-sample batches in SMALL_ROUNDS rounds, each after a round of the same-shape COPY (PostgreSQL): this
  // machine's speed drifts by a quarter between runs minutes apart (the same client work took 4.0 to 6.3 s per
  // million samples), so each HTTP round is read against the COPY round just before it, and the median taken.
  const rounds: Array<{ copy?: CpuMeasured; http: CpuMeasured }> = []
  for (let round = 0; round < (kind === 'postgres' ? SMALL_ROUNDS : 1); round++) {
    const copyRound = copySmallRound ? await copySmallRound(round) : undefined
    if (copyRound) out[`copySmall${round + 1}`] = copyRound
    const http = await cpuOf(cpuParts, () => ingestAll(server, auths, (u) => batches(liveHeartRateOf(u, round), 60)))
    out[`ingestSmall${round + 1}`] = http
    rounds.push({ copy: copyRound, http })
  }
  if (kind === 'postgres') await database.db.execute(sql`drop table if exists bench_plain`)
  const cpu = (x: unknown) => (x as { cpuSecondsPerMillion: { total: number } }).cpuSecondsPerMillion.total
  // The round of the median ratio (the lower one of an even count) stands for the 60-sample shape below.
  const ratioOf = (r: (typeof rounds)[number]) => (r.copy ? r.http.perSecond / r.copy.perSecond : 0)
  const middle = [...rounds].sort((a, b) => ratioOf(a) - ratioOf(b))[(rounds.length - 1) >> 1]
  out.ingestSmall = middle.http
  if (middle.copy) out.copySmall = middle.copy
  // HTTP ÷ COPY of the same shape (and the 60-sample batches against the large COPYs too, as before).
  const copy = out.copy as { perSecond: number } | undefined
  const copySmall = middle.copy
  if (copy && copySmall) {
    const large = (out.ingestLarge as { perSecond: number }).perSecond
    const small = middle.http.perSecond
    const blocks = (out.ingestLargeBlocks as { perSecond: number }).perSecond
    out.ingestRatios = {
      'large HTTP, straight into blocks / large COPY': blocks / copy.perSecond,
      'large HTTP / large COPY': large / copy.perSecond,
      'small HTTP / small COPY': small / copySmall.perSecond,
      'small HTTP / small COPY, each round': rounds.map(ratioOf),
      'small HTTP, a statement per upload / small COPY':
        (out.ingestSmallOneByOne as { perSecond: number }).perSecond / copySmall.perSecond,
      'small HTTP / large COPY': small / copy.perSecond,
    }
    // The same comparison by CPU spent per sample (clients, server, database together), which a loaded machine
    // moves less than wall-clock rates: COPY's CPU per sample ÷ HTTP's (1 = as cheap as COPY).
    out.cpuRatios = {
      'large COPY / large HTTP, straight into blocks': cpu(out.copy) / cpu(out.ingestLargeBlocks),
      'large COPY / large HTTP': cpu(out.copy) / cpu(out.ingestLarge),
      'small COPY / small HTTP': cpu(copySmall) / cpu(middle.http),
      'small COPY / small HTTP, each round': rounds.map((r) => (r.copy ? cpu(r.copy) / cpu(r.http) : 0)),
      'small COPY / small HTTP, a statement per upload': cpu(copySmall) / cpu(out.ingestSmallOneByOne),
    }
  }
  if (process.env.BENCH_INGEST_ONLY === '1') {
    await bench.cleanUp()
    return out
  }

  // 3. Raw reads from rows, compaction, raw reads from blocks.
  await store.db.execute(sql`analyze`)
  out.rawRows = await rawReads(server, auths, size.hours)
  const compactStarted = performance.now()
  const compacted = await compactMeasurements(store.db, { before: liveStart + 24 * 3600_000, wait: true })
  out.compaction = { ...compacted, seconds: (performance.now() - compactStarted) / 1000 }
  await store.db.execute(sql`vacuum analyze`)
  out.rawBlocks = await rawReads(server, auths, size.hours)
  // The row table after compaction holds the emptied pages of the bulk load, which later inserts reuse; in steady
  // state it holds the last hour or two of each active user. Figures: as left by plain VACUUM, and after VACUUM FULL.
  out.heartRateStore = await storeBytes(store.db)
  await store.db.execute(sql`vacuum full measurements`)
  out.heartRateStoreAfterVacuumFull = await storeBytes(store.db)

  // 4. Float types: 1 Hz skin temperature (two decimals) and HRV (any double) for one user, hours as above.
  const floats = await login(server, token, 'floats')
  const temp = walk(7, 3000, 3800)
  const hrvSeed = walk(9, 20, 120)
  const floatSeries: Series[] = [
    { type: 'skin_temperature', start: T0, count: size.hours * 3600, stepMs: 1000, value: () => temp() / 100 },
    {
      type: 'hrv_rmssd',
      start: T0,
      count: size.hours * 3600,
      stepMs: 1000,
      value: () => hrvSeed() + Math.random() * 0.999,
    },
  ]
  for (const s of floatSeries) await ingestAll(server, [floats], () => batches(s, BATCH))
  await compactMeasurements(store.db, { before: liveStart + 24 * 3600_000, wait: true })
  out.floatBlocks = await queryRows(
    store.db,
    sql`select type, (sum(pg_column_size(b.*))::float8 / sum(count)) as block_bytes_per_sample, sum(count)::int as samples
          from measurement_blocks b where user_id = ${ids.floats} group by type order by type`,
  )

  // 5. A year of one user: heart rate every few seconds, steps and skin temperature every 5 minutes. The year-long
  // reads touch the rollup's 35,040 quarter-hours per type whatever the sample rate; the rate only sets how long
  // seeding takes.
  const year = await login(server, token, 'year')
  const days = size.yearDays
  const yearStart = T0 - days * 86400_000
  const yhr = walk(11, 45, 150)
  const ysteps = walk(12, 0, 120)
  const ytemp = walk(13, 3100, 3600)
  const yearSeries: Series[] = [
    {
      type: 'heart_rate',
      start: yearStart,
      count: (days * 86400) / size.yearHeartRateStepS,
      stepMs: size.yearHeartRateStepS * 1000,
      value: () => yhr(),
    },
    { type: 'steps', start: yearStart, count: days * 288, stepMs: 300_000, value: () => ysteps() },
    { type: 'skin_temperature', start: yearStart, count: days * 288, stepMs: 300_000, value: () => ytemp() / 100 },
  ]
  const yearIngest = []
  const from = new Date(yearStart).toISOString()
  const to = new Date(T0).toISOString()
  for (const s of yearSeries) yearIngest.push(await ingestAll(server, [year], () => batches(s, BATCH)))
  out.yearIngest = yearIngest
  bench.step(`${kind}, the previous layout's minute rollup of the year`)
  // Same-run baseline of the year-long day buckets: the previous layout's per-minute rollup of the same heart rate
  // and the previous query over it (in-process, as the new repository call below).
  await store.db.execute(sql`
    create table bench_minutes as
    select user_id, type, date_trunc('minute', measured_at, 'UTC') as minute, count(*)::int as count, sum(value) as sum,
           min(value) as min, max(value) as max
      from measurements where user_id = ${ids.year} and type = 'heart_rate' group by 1, 2, 3`)
  await store.db.execute(sql`alter table bench_minutes add primary key (user_id, type, minute)`)
  bench.step(`${kind}, compacting the year`)
  await compactMeasurements(store.db, { before: T0, wait: true })
  bench.step(`${kind}, vacuum analyze after the year`)
  await store.db.execute(sql`vacuum analyze`)
  const dayOf = (ms: number) => new Intl.DateTimeFormat('en-CA', { timeZone: ZONE }).format(new Date(ms))
  const inProcess = async (run: () => Promise<unknown>) => {
    const times: number[] = []
    for (let i = 0; i < QUERY_RUNS + 2; i++) {
      const t = performance.now()
      await run()
      if (i >= 2) times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    return { p50: percentile(times, 50), p99: percentile(times, 99) }
  }
  const repo = createMeasurementRepository(store.db)
  out.yearInProcess = {
    'aggregate 1d, previous (1-minute rollup)': await inProcess(() =>
      queryRows(
        store.db,
        sql`select to_char(start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as start,
                   sum(count)::int as count, sum(sum) / sum(count) as avg, min(min) as min, max(max) as max
              from (select ((minute at time zone ${ZONE})::date::timestamp at time zone ${ZONE}) as start, count, sum, min, max
                      from bench_minutes where user_id = ${ids.year} and type = 'heart_rate'
                       and minute >= ${from}::timestamptz and minute < ${to}::timestamptz) m
             group by m.start order by m.start`,
      ),
    ),
    'aggregate 1d, now (15-minute rollup)': await inProcess(() =>
      repo.aggregate(ids.year, {
        type: 'heart_rate',
        from: new Date(yearStart),
        to: new Date(T0),
        bucket: '1d',
        timeZone: ZONE,
      }),
    ),
  }
  await store.db.execute(sql`drop table bench_minutes`)
  out.year = {
    'aggregate 1d': await timed(
      server,
      year,
      `/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=${from}&to=${to}`,
      QUERY_RUNS,
    ),
    'statistics daily': await timed(
      server,
      year,
      `/v1/statistics/daily?from=${dayOf(yearStart + 86400_000)}&to=${dayOf(T0 - 1)}`,
      QUERY_RUNS,
    ),
    'aggregate 1h (30 d)': await timed(
      server,
      year,
      `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${new Date(T0 - 30 * 86400_000).toISOString()}&to=${to}`,
      QUERY_RUNS,
    ),
  }
  await bench.cleanUp()
  return out
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

try {
  console.log(
    `machine: ${cpus().length} cpus (${cpus()[0]?.model}), ${fmt(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(`date: ${new Date().toISOString()}, zone ${ZONE}, sizes ${JSON.stringify(SIZES)}`)
  for (const kind of ['postgres', 'pglite'] as const) {
    const r = await scenario(kind)
    console.log(
      `\n${kind} (load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')})`,
    )
    console.log(JSON.stringify(r, null, 2))
  }
  bench.finish()
} catch (err) {
  // Printed before the clean-ups: a clean-up that fails or hangs must not hide why the run stopped.
  console.error('benchmark failed:', err)
  process.exitCode = 1
} finally {
  await bench.cleanUp()
  bench.finish()
}
