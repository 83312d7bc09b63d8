/**
 * Change log and webhooks cost (issue 18). Not a test: figures go to BENCHMARKS.md.
 *
 *   npm run bench:webhooks                                   # PGlite
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:webhooks
 *
 * On PostgreSQL a scratch database `nowatch_bench_webhooks_*` is made on that server and dropped at the end
 * (bench/harness.ts, as the other benches); on PGlite an in-memory database.
 *
 * One app, one database, in this process (loopback only). Measurement batches of BATCH samples are
 * uploaded by CONCURRENCY clients in three modes, interleaved round by round so that the machine's load
 * hits all three alike:
 *   off       `app.changes.record` and `app.changes.recording` (the WITH items the upload's own statement
 *             carries) replaced by no-ops: the upload as it would be without a change log (the baseline)
 *   log       the change log as shipped, no subscription
 *   webhooks  the change log plus an active subscription of the uploading user, its events written to
 *             the outbox and delivered by the worker to a receiver on loopback while the uploads run
 * Then the delivery latency from commit (the upload's answer) to the receiver, p50/p99, in webhook mode.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { sql } from 'drizzle-orm'
import { buildApp } from '../app.ts'
import { openDatabase } from '../db/client.ts'
import { loadConfig } from '../plugins/config.ts'
import { userWithToken } from '../test/helpers/fixtures.ts'
import { startReceiver } from '../test/helpers/webhooks.ts'
import { benchHarness } from './harness.ts'

const BATCH = Number(process.env.BENCH_BATCH ?? 1000)
const BATCHES_PER_ROUND = Number(process.env.BENCH_BATCHES ?? 20)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 900)
const T0 = Date.parse('2025-01-01T00:00:00Z')

const bench = benchHarness(TIMEOUT_S)
const BASE_URL = process.env.DATABASE_URL
const database = BASE_URL
  ? await openDatabase({
      databaseUrl: await bench.scratchDatabase(BASE_URL, 'nowatch_bench_webhooks'),
      poolMax: 10,
    })
  : await openDatabase({ dataDir: 'memory://' })
bench.cleanups.push(() => database.close())
await database.migrate()
const config = loadConfig({
  NODE_ENV: 'test',
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
  BCRYPT_COST: '4',
  LOG_LEVEL: 'silent',
  RATE_LIMIT_ENABLED: 'false',
  MAX_EVENT_LOOP_DELAY_MS: '0',
  JOBS_ENABLED: 'true',
  WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
  DATABASE_URL: BASE_URL,
})
const app = await buildApp({ config, database, logger: false })
bench.cleanups.push(() => app.close())
await app.ready()
const receiver = await startReceiver()
bench.cleanups.push(() => receiver.close())
const receivedAt = new Map<string, number>()
const onDelivery = () => {
  for (const d of receiver.deliveries.splice(0)) {
    const now = performance.now()
    const events = d.json.type === 'batch' ? (d.json.data.events as Array<{ data: unknown }>) : [d.json]
    // A batch is known by the first instant of its range: unique per upload here.
    for (const e of events) receivedAt.set((e.data as { range: { from: string } }).range.from, now)
  }
}
const poll = setInterval(onDelivery, 2)

type Mode = 'off' | 'log' | 'webhooks'
const realRecord = app.changes.record
const realRecording = app.changes.recording
// The upload records its change inside its own statement (a WITH item): off, that item writes nothing.
const noRecording: typeof realRecording = () => sql`change_off as (select 1)`
// BENCH_SAME_USER=1: every client uploads for one user (the worst case: one user's commits queue on its
// change row); otherwise each client is its own user, as a fleet of watches is.
const USERS = process.env.BENCH_SAME_USER === '1' ? 1 : CONCURRENCY
const makeUsers = () => Promise.all(Array.from({ length: USERS }, () => userWithToken(app)))
const users = { off: await makeUsers(), log: await makeUsers(), webhooks: await makeUsers() }
for (const u of users.webhooks) {
  const sub = await app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    headers: u.headers,
    payload: { url: receiver.url, event_types: ['measurements.created'] },
  })
  if (sub.statusCode !== 201) throw new Error(`subscription: ${sub.body}`)
}

let batchNo = 0
const committedAt = new Map<string, number>()
function body(): { payload: string; from: string } {
  const b = batchNo++
  const samples = new Array(BATCH)
  for (let k = 0; k < BATCH; k++) {
    samples[k] = {
      type: 'heart_rate',
      timestamp: new Date(T0 + (b * BATCH + k) * 1000).toISOString(),
      value: 60 + (k % 40),
    }
  }
  return {
    payload: JSON.stringify({ device_id: 'bench', samples }),
    from: new Date(T0 + b * BATCH * 1000).toISOString(),
  }
}

async function round(mode: Mode): Promise<number> {
  app.changes.record = mode === 'off' ? async () => [] : realRecord
  app.changes.recording = mode === 'off' ? noRecording : realRecording
  const bodies = Array.from({ length: BATCHES_PER_ROUND }, body)
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, client) => {
      const user = users[mode][client % USERS]
      while (next < bodies.length) {
        const { payload, from } = bodies[next++]
        const res = await app.inject({
          method: 'POST',
          url: '/v1/measurements',
          headers: { ...user.headers, 'content-type': 'application/json' },
          payload,
        })
        if (res.statusCode !== 200) throw new Error(`ingest ${res.statusCode}: ${res.body}`)
        if (mode === 'webhooks') {
          // The answer comes after the commit.
          committedAt.set(from, performance.now())
        }
      }
    }),
  )
  const seconds = (performance.now() - start) / 1000
  app.changes.record = realRecord
  app.changes.recording = realRecording
  return (BATCHES_PER_ROUND * BATCH) / seconds
}

const rates: Record<Mode, number[]> = { off: [], log: [], webhooks: [] }
await round('off') // warm-up
await round('log')
const modes: Mode[] = ['off', 'log', 'webhooks']
committedAt.clear()
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round, so no mode always runs first or after the same neighbour.
  for (let i = 0; i < modes.length; i++) {
    const mode = modes[(i + r) % modes.length]
    rates[mode].push(await round(mode))
  }
}
// Let the worker finish, then read the latencies.
const until = Date.now() + 60_000
while (Date.now() < until) {
  onDelivery()
  if ([...committedAt.keys()].every((s) => receivedAt.has(s))) break
  await new Promise((r) => setTimeout(r, 50))
}
clearInterval(poll)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]
const latencies = [...committedAt].flatMap(([from, at]) => {
  const got = receivedAt.get(from)
  return got === undefined ? [] : [got - at]
})
const base = median(rates.off)
const out = {
  database: database.kind,
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg(),
  },
  batch: BATCH,
  batches_per_round: BATCHES_PER_ROUND,
  rounds: ROUNDS,
  concurrency: CONCURRENCY,
  users_per_mode: USERS,
  samples_per_s_median: {
    off: Math.round(base),
    log: Math.round(median(rates.log)),
    webhooks: Math.round(median(rates.webhooks)),
  },
  ratio_to_off: { log: +(median(rates.log) / base).toFixed(3), webhooks: +(median(rates.webhooks) / base).toFixed(3) },
  delivery_latency_ms: {
    events: latencies.length,
    expected: committedAt.size,
    p50: Math.round(pct(latencies, 0.5)),
    p99: Math.round(pct(latencies, 0.99)),
    max: Math.round(Math.max(...latencies)),
  },
}
console.log(JSON.stringify(out, null, 2))
await bench.cleanUp()
bench.finish()
