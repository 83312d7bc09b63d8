/**
 * Auth hot paths benchmark (issue 11). Not a test: figures go to BENCHMARKS.md.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:auth
 *
 * Creates a scratch database `nowatch_bench_auth_*` on that server (dropped at the end), starts the API server
 * (server.ts, BCRYPT_COST=12, rate limits off) and a bare Fastify hello-world (bench/hello-server.ts) as child
 * processes on 127.0.0.1, the same way, and drives them with autocannon from this process. Every figure is a
 * ratio against a baseline measured in the same run:
 *  - login: logins/s against cores ÷ (one bcrypt hash at cost 12, median, measured here), while a probe
 *    measures the p99 of GET /v1/users/me (the event loop must stay responsive during the flood);
 *  - GET /v1/users/me against GET /hello of the hello-world, same autocannon settings, ROUNDS alternations;
 *  - refresh rotations/s (each connection rotates its own session's token chain) with p50/p99;
 *  - the app start (refresh, profile, one measurement batch, daily statistics) per virtual user, p50/p99;
 *  - revocation across processes: a logout on a second server process, the first one refusing the token.
 * Bounded by BENCH_TIMEOUT_S.
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism, cpus, totalmem } from 'node:os'
import autocannon from 'autocannon'
import { openDatabase } from '../db/client.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { createUserRepository } from '../routes/user/repository.ts'
import { benchHarness, databaseUrlOrExit, percentile } from './harness.ts'

const BASE_URL = databaseUrlOrExit()
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const USERS = Number(process.env.BENCH_USERS ?? 200)
const COST = 12
const CORES = availableParallelism()
const LOGIN_CONNECTIONS = Number(process.env.BENCH_LOGIN_CONNECTIONS ?? 4 * CORES)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 600)
/** Comma-separated subset of login,profile,refresh,appstart,revocation (default all). */
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? 'login,profile,refresh,appstart,revocation').split(','))
/** Extra environment for the API server (the optimisations' before/after), e.g. UV_THREADPOOL_SIZE. */
const SERVER_ENV = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_SERVER_'))
    .map(([k, v]) => [k.slice('BENCH_SERVER_'.length), v as string]),
)
const PASSWORD = 'Bench-Mark-42!'
const SESSION_CACHE_TTL_MS = 2000

const bench = benchHarness(TIMEOUT_S)

const email = (i: number) => `user${i}@bench.local`
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
async function seed(databaseUrl: string) {
  const database = await openDatabase({ databaseUrl, poolMax: 4 })
  try {
    await database.migrate()
    const client = await createClientAppRepository(database.db).create('bench')
    // One hash at the server's cost for every user: each login still runs one full bcrypt compare.
    const passwordHash = await hashPassword(PASSWORD, COST)
    const users = createUserRepository(database.db)
    const now = new Date()
    for (let i = 0; i < USERS; i++) {
      await users.create({
        email: email(i),
        passwordHash,
        firstName: 'Bench',
        lastName: `User ${i}`,
        tocAcceptedAt: now,
        privacyPolicyAcceptedAt: now,
        emailVerifiedAt: now,
        timeZone: 'Europe/Berlin',
      })
    }
    return client.x_auth_token
  } finally {
    await database.close()
  }
}

/** A child process started like `npm start` (node --import tsx), on a free loopback port. */
async function start(script: string, env: Record<string, string>): Promise<string> {
  return (await bench.server({ LOG_LEVEL: 'warn', ...env }, { script, testDefaults: false })).url
}

interface Tokens {
  access: string
  refresh: string
}

async function login(url: string, clientToken: string, i: number): Promise<Tokens> {
  const res = await fetch(`${url}/v2/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
    body: JSON.stringify({ email: email(i), password: PASSWORD }),
  })
  if (!res.ok) throw new Error(`login: ${res.status} ${await res.text()}`)
  return (await res.json()) as Tokens
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION_S, connections: CONNECTIONS, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    )
  })
}

const perSecond = (r: autocannon.Result) => r['2xx'] / r.duration

function bcryptLimit(times: number[]) {
  const t = median(times)
  return { hashMs: t, limit: CORES / (t / 1000) }
}

async function timeHashes(n: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await hashPassword(PASSWORD, COST)
    times.push(performance.now() - t)
  }
  return times
}

/** A session per connection: autocannon's context is per connection, so each one rotates its own chain. */
function perConnection<T>(pool: T[]) {
  let next = 0
  return (ctx: Record<string, unknown>): T => {
    if (ctx.item === undefined) ctx.item = pool[next++ % pool.length]
    return ctx.item as T
  }
}

async function benchLogin(url: string, clientToken: string, probeAuth: string) {
  // The probe alone first: on a shared machine its p99 is not zero without any flood either.
  const idle = await run({
    url: `${url}/v1/users/me`,
    connections: 1,
    overallRate: 50,
    headers: { authorization: probeAuth },
  })
  await timeHashes(1)
  const before = await timeHashes(5)
  let n = 0
  const [flood, probe] = await Promise.all([
    run({
      url,
      connections: LOGIN_CONNECTIONS,
      timeout: 30,
      requests: [
        {
          method: 'POST',
          path: '/v2/auth/login',
          headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ email: email(n++ % USERS), password: PASSWORD }) }),
        },
      ],
    }),
    run({
      url: `${url}/v1/users/me`,
      connections: 1,
      overallRate: 50,
      headers: { authorization: probeAuth },
    }),
  ])
  const after = await timeHashes(5)
  const { hashMs, limit } = bcryptLimit([...before, ...after])
  // What the shared machine delivered at that moment: 4 × cores hashes at once in this process's threadpool.
  const t = performance.now()
  await Promise.all(Array.from({ length: 4 * CORES }, () => hashPassword(PASSWORD, COST)))
  const parallel = (4 * CORES) / ((performance.now() - t) / 1000)
  return {
    logins: perSecond(flood),
    non2xx: flood.non2xx,
    errors: flood.errors + flood.timeouts,
    hashMs,
    limit,
    ratio: perSecond(flood) / limit,
    parallel,
    loginP50: flood.latency.p50,
    loginP99: flood.latency.p99,
    probeP50: probe.latency.p50,
    probeP99: probe.latency.p99,
    probeMax: probe.latency.max,
    probeRequests: probe.requests.total,
    probeNon2xx: probe.non2xx,
    idleP50: idle.latency.p50,
    idleP99: idle.latency.p99,
  }
}

/**
 * GET /v1/users/me against the hello-world, alternated ROUNDS times. The API's own GET /healthz (every
 * plugin and hook of the app, no auth, no database) is measured too, to split the gap into the app's
 * plumbing and the auth + profile work.
 */
async function benchProfile(url: string, hello: string, auths: string[]) {
  const rounds: Array<{
    hello: number
    healthz: number
    me: number
    helloP99: number
    healthzP99: number
    meP99: number
    non2xx: number
  }> = []
  const auth = perConnection(auths)
  for (let r = 0; r < ROUNDS; r++) {
    const h = await run({ url: `${hello}/hello` })
    const z = await run({ url: `${url}/healthz` })
    const m = await run({
      url,
      requests: [
        {
          method: 'GET',
          path: '/v1/users/me',
          setupRequest: (req, ctx) => ({ ...req, headers: { authorization: auth(ctx as Record<string, unknown>) } }),
        },
      ],
    })
    rounds.push({
      hello: perSecond(h),
      healthz: perSecond(z),
      me: perSecond(m),
      helloP99: h.latency.p99,
      healthzP99: z.latency.p99,
      meP99: m.latency.p99,
      non2xx: m.non2xx + h.non2xx + z.non2xx,
    })
  }
  const mean = (f: (r: (typeof rounds)[number]) => number) => rounds.reduce((s, r) => s + f(r), 0) / rounds.length
  const hello_ = mean((r) => r.hello)
  const me = mean((r) => r.me)
  return { rounds, hello: hello_, healthz: mean((r) => r.healthz), me, ratio: me / hello_ }
}

/**
 * Closed-loop refresh: autocannon resets its per-connection context when it loops over its requests, so
 * it cannot carry a token chain; each worker here rotates its own session's chain with keep-alive fetch.
 */
async function benchRefresh(url: string, clientToken: string, sessions: Tokens[]) {
  const chains = sessions.map((s) => ({ refresh: s.refresh }))
  const times: number[] = []
  let failures = 0
  const stop = Date.now() + DURATION_S * 1000
  const started = performance.now()
  await Promise.all(
    chains.map(async (chain) => {
      while (Date.now() < stop) {
        const t = performance.now()
        const res = await fetch(`${url}/v1/auth/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
          body: JSON.stringify({ refresh: chain.refresh }),
        })
        const body = await res.text()
        if (!res.ok) {
          if (failures++ < 3) console.error(`refresh: ${res.status} ${body.slice(0, 300)}`)
          return
        }
        times.push(performance.now() - t)
        chain.refresh = (JSON.parse(body) as Tokens).refresh
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  times.sort((a, b) => a - b)
  return {
    rotations: times.length / seconds,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    non2xx: failures,
    chains,
  }
}

/** Virtual users each doing the app start in a loop: refresh, profile, one measurement batch, statistics. */
async function benchAppStart(url: string, clientToken: string, chains: Array<{ refresh: string }>) {
  const steps: Record<string, number[]> = { refresh: [], profile: [], measurements: [], statistics: [], total: [] }
  const stop = Date.now() + DURATION_S * 1000
  const today = new Date()
  const to = today.toISOString().slice(0, 10)
  const from = new Date(today.getTime() - 6 * 86400_000).toISOString().slice(0, 10)
  let failures = 0
  const timed = async (name: string, f: () => Promise<Response>) => {
    const t = performance.now()
    const res = await f()
    const text = await res.text()
    steps[name].push(performance.now() - t)
    if (!res.ok) throw new Error(`${name}: ${res.status} ${text.slice(0, 300)}`)
    return text
  }
  const started = performance.now()
  await Promise.all(
    chains.map(async (chain, vu) => {
      let i = 0
      while (Date.now() < stop) {
        const t = performance.now()
        try {
          const tokens = JSON.parse(
            await timed('refresh', () =>
              fetch(`${url}/v1/auth/refresh`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
                body: JSON.stringify({ refresh: chain.refresh }),
              }),
            ),
          ) as Tokens
          chain.refresh = tokens.refresh
          const authorization = `Bearer ${tokens.access}`
          await timed('profile', () => fetch(`${url}/v1/users/me`, { headers: { authorization } }))
          // One minute of 1 Hz heart rate, as a watch syncs it at app start.
          const base = today.getTime() - 6 * 86400_000 + (vu * 500 + (i % 500)) * 60_000
          const samples = Array.from({ length: 60 }, (_, k) => ({
            type: 'heart_rate',
            timestamp: new Date(base + k * 1000).toISOString(),
            value: 60 + (k % 20),
          }))
          await timed('measurements', () =>
            fetch(`${url}/v1/measurements`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization },
              body: JSON.stringify({ device_id: 'bench-watch', samples }),
            }),
          )
          await timed('statistics', () =>
            fetch(`${url}/v1/statistics/daily?from=${from}&to=${to}`, { headers: { authorization } }),
          )
          steps.total.push(performance.now() - t)
        } catch (err) {
          failures++
          if (failures < 3) console.error(String(err))
          return
        }
        i++
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const summary = Object.fromEntries(
    Object.entries(steps).map(([k, xs]) => {
      const sorted = [...xs].sort((a, b) => a - b)
      return [k, { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: xs.length }]
    }),
  )
  return { summary, perSecond: steps.total.length / seconds, failures }
}

/** A logout on process B; how long until process A refuses the same access token. */
async function revocationAcrossProcesses(a: string, b: string, clientToken: string) {
  const tokens = await login(b, clientToken, USERS - 1)
  const authorization = `Bearer ${tokens.access}`
  const warm = await fetch(`${a}/v1/users/me`, { headers: { authorization } })
  if (!warm.ok) throw new Error(`profile on A: ${warm.status}`)
  const out = await fetch(`${b}/v1/auth/logout`, { method: 'POST', headers: { authorization } })
  if (!out.ok) throw new Error(`logout on B: ${out.status}`)
  const t = performance.now()
  for (;;) {
    const res = await fetch(`${a}/v1/users/me`, { headers: { authorization } })
    await res.arrayBuffer()
    if (res.status === 401) return performance.now() - t
    if (performance.now() - t > 30_000) throw new Error('A still accepts the revoked token after 30 s')
    await new Promise((r) => setTimeout(r, 20))
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const pct = (n: number) => `${(100 * n).toFixed(0)} %`
const ms = (n: number) => `${n.toFixed(1)} ms`

try {
  console.log(
    `machine: ${CORES} cpus (${cpus()[0]?.model}), ${fmt(totalmem() / 2 ** 30)} GiB, node ${process.version}; date ${new Date().toISOString()}`,
  )
  console.log(
    `${DURATION_S} s per scenario, ${CONNECTIONS} connections (login ${LOGIN_CONNECTIONS}), ${USERS} users, server env ${JSON.stringify(SERVER_ENV)}\n`,
  )
  const databaseUrl = await bench.scratchDatabase(BASE_URL, 'nowatch_bench_auth')
  const clientToken = await seed(databaseUrl)
  const serverEnv = {
    NODE_ENV: 'production',
    MAIL_TRANSPORT: 'log',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: randomBytes(32).toString('hex'),
    BCRYPT_COST: String(COST),
    RATE_LIMIT_ENABLED: 'false',
    SESSION_LIMIT_POLICY: 'evict_oldest',
    SESSION_CACHE_TTL_MS: String(SESSION_CACHE_TTL_MS),
    JOBS_ENABLED: 'false',
    ...SERVER_ENV,
  }
  const api = await start('server.ts', serverEnv)
  const hello = await start('bench/hello-server.ts', {})
  const sessions = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => login(api, clientToken, i)))
  const auths = sessions.map((s) => `Bearer ${s.access}`)

  if (SCENARIOS.has('login')) {
    const l = await benchLogin(api, clientToken, auths[0])
    console.log(
      `login (cost ${COST}):  ${l.logins.toFixed(2)} logins/s; bcrypt hash median ${ms(l.hashMs)} → limit ${CORES} / ${(l.hashMs / 1000).toFixed(3)} s = ${l.limit.toFixed(2)}/s → ${pct(l.ratio)} of the limit (goal ≥ 90 %)`,
    )
    console.log(
      `  for reference, ${4 * CORES} hashes at once in the bench process: ${l.parallel.toFixed(2)}/s (${pct(l.parallel / l.limit)} of the limit); logins/s = ${pct(l.logins / l.parallel)} of that`,
    )
    console.log(
      `  login p50 ${ms(l.loginP50)}, p99 ${ms(l.loginP99)}; non-2xx ${l.non2xx}, errors ${l.errors}; probe GET /v1/users/me during the flood: p50 ${ms(l.probeP50)}, p99 ${ms(l.probeP99)} (goal < 50 ms), max ${ms(l.probeMax)}, ${l.probeRequests} requests, non-2xx ${l.probeNon2xx}; the same probe without the flood: p50 ${ms(l.idleP50)}, p99 ${ms(l.idleP99)}`,
    )
  }
  if (SCENARIOS.has('profile')) {
    const p = await benchProfile(api, hello, auths)
    for (const [i, r] of p.rounds.entries()) {
      console.log(
        `profile round ${i + 1}: hello ${fmt(r.hello)} req/s (p99 ${ms(r.helloP99)}), API /healthz ${fmt(r.healthz)} req/s (p99 ${ms(r.healthzP99)}), /v1/users/me ${fmt(r.me)} req/s (p99 ${ms(r.meP99)}) = ${pct(r.me / r.hello)}; non-2xx ${r.non2xx}`,
      )
    }
    console.log(
      `profile: /v1/users/me ${fmt(p.me)} req/s vs hello-world ${fmt(p.hello)} req/s = ${pct(p.ratio)} (goal ≥ 50 %); the API's /healthz ${fmt(p.healthz)} req/s = ${pct(p.healthz / p.hello)}`,
    )
  }
  let chains = sessions.map((s) => ({ refresh: s.refresh }))
  if (SCENARIOS.has('refresh')) {
    const r = await benchRefresh(api, clientToken, sessions)
    chains = r.chains
    console.log(
      `refresh: ${fmt(r.rotations)} rotations/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}; non-2xx ${r.non2xx} (${CONNECTIONS} sessions, one chain each)`,
    )
  }

  if (SCENARIOS.has('appstart')) {
    const a = await benchAppStart(api, clientToken, chains)
    console.log(
      `app start (${CONNECTIONS} virtual users): ${a.perSecond.toFixed(1)} app starts/s, failures ${a.failures}`,
    )
    for (const [k, s] of Object.entries(a.summary)) {
      console.log(`  ${k.padEnd(13)} p50 ${ms(s.p50)}, p99 ${ms(s.p99)} (${s.n})`)
    }
  }
  if (SCENARIOS.has('revocation')) {
    const second = await start('server.ts', serverEnv)
    const revokedMs = await revocationAcrossProcesses(api, second, clientToken)
    console.log(
      `revocation across processes: a logout on process B is refused by process A after ${ms(revokedMs)} (SESSION_CACHE_TTL_MS ${SESSION_CACHE_TTL_MS})`,
    )
  }
} finally {
  await bench.cleanUp()
  bench.finish()
}
