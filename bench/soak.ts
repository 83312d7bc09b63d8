/**
 * Soak (issue 23): a started server under mixed load for SOAK_MINUTES (default 20), its memory and GC sampled.
 * Not a test: figures go to BENCHMARKS.md.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:soak
 *
 * The server (a scratch database `nowatch_bench_soak_*`, jobs on, compaction every minute) gets the probe
 * bench/soak-probe.mjs preloaded: every 10 s it records heap used, RSS, the share of the interval spent in GC
 * (PerformanceObserver 'gc' entries) and the full (major) collections. SOAK_CONCURRENCY clients meanwhile run a
 * mix over SOAK_USERS users: 60-sample heart-rate batches (a minute of a watch each), aggregates, raw pages,
 * daily statistics, the profile and logins. At the end: the table, and a verdict comparing the last third of
 * the samples after SOAK_WARMUP_S with the first third. SOAK_SNAPSHOTS=1 also writes server heap snapshots
 * (after warm-up and at the end) into the run's folder, to compare in Chrome DevTools' Memory tab (writing one
 * doubles the server's RSS for the rest of the run: leave them off for the RSS figures).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDatabase } from '../db/client.ts'
import { benchHarness, benchServerEnv, databaseUrlOrExit, seedBenchUsers } from './harness.ts'

const BASE_URL = databaseUrlOrExit()
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const MINUTES = env('SOAK_MINUTES', 20)
const USERS = env('SOAK_USERS', 40)
const CONCURRENCY = env('SOAK_CONCURRENCY', 6)
const WARMUP_S = env('SOAK_WARMUP_S', MINUTES >= 10 ? 120 : 60)
const INTERVAL_MS = env('SOAK_PROBE_INTERVAL_MS', 10_000)
const SNAPSHOTS = process.env.SOAK_SNAPSHOTS === '1'
const PASSWORD = 'Bench-Mark-42!'
const ZONE = 'Europe/Berlin'
const PROBE = resolve(fileURLToPath(new URL('./soak-probe.mjs', import.meta.url)))

const bench = benchHarness(MINUTES * 60 + 600)
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')

interface Sample {
  at: number
  ms: number
  heapUsed: number
  rss: number
  gcMs: number
  major: number
  minor: number
}

/** What the clients did, per probe interval (counted by the time each answer arrived). */
const answered: number[] = []
const failures: string[] = []
let started = 0

async function main() {
  console.log(
    `machine: ${cpus().length} cpus (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${load()}`,
  )
  console.log(`soak: ${MINUTES} min, ${USERS} users, ${CONCURRENCY} clients, warm-up ${WARMUP_S} s`)
  const dir = mkdtempSync(join(tmpdir(), 'nowatch-soak-'))
  const probeFile = join(dir, 'probe.jsonl')
  writeFileSync(probeFile, '')
  const url = await bench.scratchDatabase(BASE_URL, 'nowatch_bench_soak')
  const database = await openDatabase({ databaseUrl: url, poolMax: 2 })
  const names = Array.from({ length: USERS }, (_, u) => `s${u}`)
  const { token } = await seedBenchUsers(database, names, { password: PASSWORD, timeZone: ZONE })
  await database.close()
  const server = await bench.server(
    {
      ...benchServerEnv(),
      MAX_EVENT_LOOP_DELAY_MS: '0',
      DATABASE_URL: url,
      MEASUREMENT_COMPACTION_INTERVAL_S: '60',
      NODE_OPTIONS: `--import=${PROBE}`,
      SOAK_PROBE_FILE: probeFile,
      SOAK_PROBE_DIR: dir,
      SOAK_PROBE_INTERVAL_MS: String(INTERVAL_MS),
    },
    { ready: '/readyz', testDefaults: false },
  )
  console.log(`server ${server.url}, probe ${probeFile}`)

  async function request(method: string, path: string, auth?: string, body?: unknown) {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(auth ? { authorization: auth } : { 'x-auth-token': token }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${method} ${path.split('?')[0]}: ${res.status} ${text.slice(0, 200)}`)
    const slot = Math.floor((Date.now() - started) / INTERVAL_MS)
    answered[slot] = (answered[slot] ?? 0) + 1
    return text ? JSON.parse(text) : undefined
  }
  const login = async (u: number) =>
    `Bearer ${(await request('POST', '/v2/auth/login', undefined, { email: `s${u}@bench.local`, password: PASSWORD })).access}`

  // Each user's watch: 1 Hz heart rate from three days ago, a minute per batch (later batches never repeat).
  const HOUR = 3600_000
  const origin = Math.floor(Date.now() / HOUR) * HOUR - 72 * HOUR
  const users = await Promise.all(names.map(async (_, u) => ({ u, auth: await login(u), next: origin, value: 70 })))
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)
  const actions: Array<[number, (user: (typeof users)[number]) => Promise<unknown>]> = [
    [
      50,
      (user) => {
        const samples = Array.from({ length: 60 }, (_, i) => {
          user.value = Math.max(45, Math.min(150, user.value + ((i * 7 + user.u) % 3) - 1))
          return { type: 'heart_rate', timestamp: new Date(user.next + i * 1000).toISOString(), value: user.value }
        })
        user.next += 60_000
        return request('POST', '/v1/measurements', user.auth, { device_id: 'watch', samples })
      },
    ],
    [
      12,
      (user) =>
        request(
          'GET',
          `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${new Date(origin).toISOString()}&to=${new Date(user.next + 60_000).toISOString()}`,
          user.auth,
        ),
    ],
    [
      8,
      (user) =>
        request(
          'GET',
          `/v1/measurements?type=heart_rate&limit=500&from=${new Date(Math.max(origin, user.next - 20 * 60_000)).toISOString()}`,
          user.auth,
        ),
    ],
    [
      10,
      (user) =>
        request('GET', `/v1/statistics/daily?from=${day(origin - 27 * 24 * HOUR)}&to=${day(user.next)}`, user.auth),
    ],
    [15, (user) => request('GET', '/v1/users/me', user.auth)],
    [
      5,
      async (user) => {
        // Out, then in again: an account holds at most 30 sessions (429 too_many_sessions past that).
        await request('POST', '/v1/auth/logout', user.auth)
        user.auth = await login(user.u)
      },
    ],
  ]
  const total = actions.reduce((n, [w]) => n + w, 0)
  let rng = 20261201
  const random = () => {
    rng = (Math.imul(rng, 1_103_515_245) + 12_345) >>> 0
    return rng / 2 ** 32
  }
  const pick = () => {
    let r = random() * total
    for (const [w, action] of actions) {
      r -= w
      if (r < 0) return action
    }
    return actions[0][1]
  }

  started = Date.now()
  const end = started + MINUTES * 60_000
  bench.step('soak load')
  if (SNAPSHOTS) {
    setTimeout(() => server.child.kill('SIGUSR2'), WARMUP_S * 1000).unref()
  }
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, c) => {
      // Each client has users of its own: a login (which logs the old session out) never races another client.
      const mine = users.filter((x) => x.u % CONCURRENCY === c)
      let k = 0
      while (Date.now() < end && mine.length > 0) {
        const user = mine[k++ % mine.length]
        try {
          await pick()(user)
        } catch (err) {
          failures.push((err as Error).message)
          if (failures.length > 50) throw new Error(`too many failures, the last: ${(err as Error).message}`)
        }
      }
    }),
  )
  if (SNAPSHOTS) {
    server.child.kill('SIGUSR2')
    await new Promise((r) => setTimeout(r, 20_000))
  }
  // The probe's last interval.
  await new Promise((r) => setTimeout(r, INTERVAL_MS + 500))
  bench.step('report')
  const samples = readFileSync(probeFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Sample)
    .filter((s) => s.at >= started && s.at <= end + INTERVAL_MS)
  report(samples)
  console.log(`failures: ${failures.length}${failures.length ? ` (first: ${failures[0]})` : ''}, load ${load()}`)
  if (SNAPSHOTS) console.log(`heap snapshots in ${dir}`)
}

const mb = (b: number) => (b / 2 ** 20).toFixed(1)
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)

function report(samples: Sample[]) {
  console.log('\n  t (s) | heap used MB | RSS MB | GC % | full GC/s | minor GC/s | answers/s')
  for (const s of samples) {
    const slot = Math.floor((s.at - started) / INTERVAL_MS) - 1
    console.log(
      `${String(Math.round((s.at - started) / 1000)).padStart(7)} | ${mb(s.heapUsed).padStart(12)} | ${mb(s.rss).padStart(6)} | ${((100 * s.gcMs) / s.ms).toFixed(1).padStart(4)} | ${((1000 * s.major) / s.ms).toFixed(2).padStart(9)} | ${((1000 * s.minor) / s.ms).toFixed(2).padStart(10)} | ${(((answered[slot] ?? 0) * 1000) / INTERVAL_MS).toFixed(0).padStart(9)}`,
    )
  }
  const after = samples.filter((s) => s.at - started >= WARMUP_S * 1000)
  const third = Math.floor(after.length / 3)
  if (third < 2) {
    console.log('verdict: too few samples after warm-up for a verdict')
    return
  }
  const summary = (xs: Sample[]) => ({
    // The floor of the saw-tooth (what survives collections) tells growth; the mean swings with where GCs fall.
    heapFloorMB: Number(mb(Math.min(...xs.map((s) => s.heapUsed)))),
    heapUsedMB: Number(mb(mean(xs.map((s) => s.heapUsed)))),
    rssMB: Number(mb(mean(xs.map((s) => s.rss)))),
    gcPercent: Number(((100 * mean(xs.map((s) => s.gcMs))) / mean(xs.map((s) => s.ms))).toFixed(2)),
    fullGcPerS: Number(((1000 * mean(xs.map((s) => s.major))) / mean(xs.map((s) => s.ms))).toFixed(3)),
  })
  const first = summary(after.slice(0, third))
  const last = summary(after.slice(-third))
  console.log(`first third after warm-up: ${JSON.stringify(first)}`)
  console.log(`last third:                ${JSON.stringify(last)}`)
  // Flat: the heap's floor and RSS within 15 %, the GC share within 1.5 points and full collections within
  // 0.2/s of the first third.
  const grows = [
    last.heapFloorMB > first.heapFloorMB * 1.15 && 'heap floor',
    last.rssMB > first.rssMB * 1.15 && 'RSS',
    last.gcPercent > first.gcPercent + 1.5 && 'GC share',
    last.fullGcPerS > first.fullGcPerS + 0.2 && 'full GCs',
  ].filter(Boolean)
  console.log(`verdict: ${grows.length ? `GROWS (${grows.join(', ')})` : 'flat'}`)
}

try {
  await main()
  bench.finish()
} catch (err) {
  console.error('benchmark failed:', err)
  process.exitCode = 1
} finally {
  await bench.cleanUp()
  bench.finish()
}
