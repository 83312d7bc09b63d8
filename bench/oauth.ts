/**
 * OAuth benchmark (issue 17). Not a test: figures go to BENCHMARKS.md.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npm run bench:oauth
 *
 * Creates a scratch database `nowatch_bench_oauth_*` on that server (dropped at the end), starts the API
 * server (server.ts, BCRYPT_COST=12, PUBLIC_URL its own address) as a child process and measures, each as a
 * ratio against the first-party (NOWATCH contract) path in the same run:
 *  - token issuance: refresh-token rotations/s at `POST /oauth/token` (oauth4webapi) against rotations/s
 *    at `POST /v1/auth/refresh`, each connection rotating its own chain, p50/p99;
 *  - a full authorization (sign-in page with its bcrypt, remembered consent, code + PKCE exchange) against
 *    a first-party `POST /v2/auth/login` (the same bcrypt), per second with LOGIN_CONNECTIONS in flight;
 *  - a scoped data read, `GET /v1/measurements?type=heart_rate` with the third-party token against the
 *    same read with a first-party token (autocannon, ROUNDS alternations), rate limits off; and once more
 *    with the per-client limit counting (RATE_LIMIT_ENABLED on, a quota too large to hit), on a second server.
 * Bounded by BENCH_TIMEOUT_S.
 */
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import autocannon from 'autocannon'
import * as oauth from 'oauth4webapi'
import { openDatabase } from '../db/client.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { createOAuthClientRepository } from '../routes/oauth/repository.ts'
import { createUserRepository } from '../routes/user/repository.ts'
import { FormAgent, REDIRECT, discover, insecure, obtainTokens } from '../test/helpers/oauth.ts'
import { freePort } from '../test/helpers/processes.ts'
import { benchHarness, databaseUrlOrExit } from './harness.ts'

const BASE_URL = databaseUrlOrExit()
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 50)
const CORES = availableParallelism()
const LOGIN_CONNECTIONS = Number(process.env.BENCH_LOGIN_CONNECTIONS ?? 2 * CORES)
const LOGINS = Number(process.env.BENCH_LOGINS ?? 8)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 900)
const PASSWORD = 'Bench-Mark-42!'
const USERS = CONNECTIONS + LOGIN_CONNECTIONS * LOGINS

const bench = benchHarness(TIMEOUT_S)

const email = (i: number) => `user${i}@bench.local`
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]

async function seed(databaseUrl: string) {
  const database = await openDatabase({ databaseUrl, poolMax: 4 })
  try {
    await database.migrate()
    const firstParty = await createClientAppRepository(database.db).create('bench')
    const { row, secret } = await createOAuthClientRepository(database.db).create({
      name: 'Bench integrator',
      redirectUris: [REDIRECT],
      scopes: ['offline_access', 'measurements:read'],
      public: false,
    })
    const passwordHash = await hashPassword(PASSWORD, 12)
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
        timeZone: 'UTC',
      })
    }
    return { xAuthToken: firstParty.x_auth_token, clientId: row.id, secret: secret as string }
  } finally {
    await database.close()
  }
}

/** server.ts on a port chosen first, so that PUBLIC_URL (the issuer) is its own address. */
async function start(env: Record<string, string>): Promise<string> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  await bench.server({ LOG_LEVEL: 'warn', PORT: String(port), PUBLIC_URL: url, ...env }, { testDefaults: false })
  return url
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION_S, connections: CONNECTIONS, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    )
  })
}

/** `n` workers each doing `count` sequential `step(worker, i)`; answers per-second and latencies (ms). */
async function timed(workers: number, count: number, step: (w: number, i: number) => Promise<void>) {
  const latencies: number[] = []
  const started = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < count; i++) {
        const t0 = performance.now()
        await step(w, i)
        latencies.push(performance.now() - t0)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  return { perSecond: latencies.length / seconds, p50: pct(latencies, 50), p99: pct(latencies, 99) }
}

const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

async function main() {
  const databaseUrl = await bench.scratchDatabase(BASE_URL, 'nowatch_bench_oauth')
  const seeded = await seed(databaseUrl)
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
    MAIL_TRANSPORT: 'log',
    BCRYPT_COST: '12',
    RATE_LIMIT_ENABLED: 'false',
    JOBS_ENABLED: 'false',
    ADMIN_MFA_REQUIRED: 'false',
  }
  const url = await start(env)
  const issuer = new URL(url)
  const as = await discover(issuer)
  const client = { client: { client_id: seeded.clientId }, clientAuth: oauth.ClientSecretBasic(seeded.secret) }
  const user = (i: number) => ({ email: email(i), password: PASSWORD })

  const firstPartyLogin = async (i: number) => {
    const res = await fetch(`${url}/v2/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': seeded.xAuthToken },
      body: JSON.stringify(user(i)),
    })
    if (!res.ok) throw new Error(`login ${res.status} ${await res.text()}`)
    return (await res.json()) as { access: string; refresh: string }
  }
  // One consent per user first, so that the timed authorizations are the common case (remembered grant).
  const tokens = [] as Array<{ oauth: oauth.TokenEndpointResponse; first: { access: string; refresh: string } }>
  for (let w = 0; w < CONNECTIONS; w++) {
    const o = await obtainTokens({ url, as }, client, user(w), 'offline_access measurements:read')
    tokens.push({ oauth: o.tokens, first: await firstPartyLogin(w) })
  }

  // Token issuance: refresh rotations, each worker its own chain.
  const chainsOAuth = tokens.map((t) => t.oauth.refresh_token as string)
  const chainsFirst = tokens.map((t) => t.first.refresh)
  const oauthRotation = await timed(CONNECTIONS, ROTATIONS, async (w) => {
    const res = await oauth.refreshTokenGrantRequest(as, client.client, client.clientAuth, chainsOAuth[w], insecure)
    const next = await oauth.processRefreshTokenResponse(as, client.client, res)
    chainsOAuth[w] = next.refresh_token as string
  })
  const firstRotation = await timed(CONNECTIONS, ROTATIONS, async (w) => {
    const res = await fetch(`${url}/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': seeded.xAuthToken },
      body: JSON.stringify({ refresh: chainsFirst[w] }),
    })
    if (!res.ok) throw new Error(`refresh ${res.status} ${await res.text()}`)
    chainsFirst[w] = ((await res.json()) as { refresh: string }).refresh
  })

  // A whole authorization vs a login: both one bcrypt compare at cost 12.
  const base = CONNECTIONS
  const oauthAuthorize = await timed(LOGIN_CONNECTIONS, LOGINS, async (w, i) => {
    const n = base + w * LOGINS + i
    await obtainTokens({ url, as }, client, user(n), 'offline_access measurements:read', { agent: new FormAgent(url) })
  })
  const firstLogin = await timed(LOGIN_CONNECTIONS, LOGINS, async (w, i) => {
    await firstPartyLogin(base + w * LOGINS + i)
  })

  // Scoped data reads.
  const path = '/v1/measurements?type=heart_rate&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z'
  const read = (token: string) =>
    run({ url: `${url}${path}`, headers: { authorization: `Bearer ${token}` } }).then((r) => ({
      rps: r['2xx'] / r.duration,
      p99: r.latency.p99,
      non2xx: r.non2xx,
    }))
  const reads = { oauth: [] as number[], first: [] as number[], oauthP99: [] as number[], firstP99: [] as number[] }
  const oauthAccess = (
    await oauth.processRefreshTokenResponse(
      as,
      client.client,
      await oauth.refreshTokenGrantRequest(as, client.client, client.clientAuth, chainsOAuth[0], insecure),
    )
  ).access_token
  const firstAccess = (await firstPartyLogin(0)).access
  for (let r = 0; r < ROUNDS; r++) {
    const f = await read(firstAccess)
    const o = await read(oauthAccess)
    if (f.non2xx || o.non2xx) throw new Error(`non-2xx answers: first ${f.non2xx}, oauth ${o.non2xx}`)
    reads.first.push(f.rps)
    reads.firstP99.push(f.p99)
    reads.oauth.push(o.rps)
    reads.oauthP99.push(o.p99)
  }
  const limited = await start({ ...env, RATE_LIMIT_ENABLED: 'true', OAUTH_CLIENT_RATE_LIMIT: '1000000' })
  const limitedRead = await run({ url: `${limited}${path}`, headers: { authorization: `Bearer ${oauthAccess}` } })
  const limitedFirst = await run({ url: `${limited}${path}`, headers: { authorization: `Bearer ${firstAccess}` } })

  const best = (xs: number[]) => Math.max(...xs)
  console.log(
    `machine: ${cpus()[0]?.model} × ${CORES}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, Node ${process.version}`,
  )
  console.log('| scenario | third-party (OAuth) | first-party (NOWATCH) | ratio |')
  console.log('|---|---:|---:|---:|')
  console.log(
    `| token issuance: refresh rotation (${CONNECTIONS} chains × ${ROTATIONS}) | ${fmt(oauthRotation.perSecond)}/s, p50 ${fmt(oauthRotation.p50)} ms, p99 ${fmt(oauthRotation.p99)} ms | ${fmt(firstRotation.perSecond)}/s, p50 ${fmt(firstRotation.p50)} ms, p99 ${fmt(firstRotation.p99)} ms | ${fmt(oauthRotation.perSecond / firstRotation.perSecond, 2)} |`,
  )
  console.log(
    `| authorization (sign-in page + remembered consent + code exchange) vs login, ${LOGIN_CONNECTIONS} in flight | ${fmt(oauthAuthorize.perSecond)}/s, p50 ${fmt(oauthAuthorize.p50)} ms | ${fmt(firstLogin.perSecond)}/s, p50 ${fmt(firstLogin.p50)} ms | ${fmt(oauthAuthorize.perSecond / firstLogin.perSecond, 2)} |`,
  )
  console.log(
    `| scoped read \`GET /v1/measurements\` (best of ${ROUNDS}, ${CONNECTIONS} connections) | ${fmt(best(reads.oauth))} req/s, p99 ${Math.min(...reads.oauthP99)} ms | ${fmt(best(reads.first))} req/s, p99 ${Math.min(...reads.firstP99)} ms | ${fmt(best(reads.oauth) / best(reads.first), 2)} |`,
  )
  console.log(
    `| the same read, per-client limit counting (RateLimit headers) | ${fmt(limitedRead['2xx'] / limitedRead.duration)} req/s, p99 ${limitedRead.latency.p99} ms | ${fmt(limitedFirst['2xx'] / limitedFirst.duration)} req/s, p99 ${limitedFirst.latency.p99} ms | ${fmt(limitedRead['2xx'] / limitedRead.duration / (limitedFirst['2xx'] / limitedFirst.duration), 2)} |`,
  )
}

try {
  await main()
} finally {
  await bench.cleanUp()
}
process.exit(0)
