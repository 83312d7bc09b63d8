/**
 * Do the account-revealing routes take the same time for known and unknown addresses? (issue 15;
 * OWASP Forgot Password Cheat Sheet: "consistent amount of time"). Not a test: figures go to BENCHMARKS.md.
 *
 *   npm run bench:enumeration                      # embedded PGlite
 *   DATABASE_URL=postgres://… npm run bench:enumeration
 *
 * In one process through app.inject, known and unknown addresses alternate (so drift hits both alike),
 * and the work queued after each answer is let finish before the next request, so it is not charged to
 * the next one. For each route: the medians of both, their difference, and a Mann-Whitney U test
 * (|z| < 1.96: no difference at the 5 % level). BENCH_SAMPLES (default 300; register, with its bcrypt
 * hash at cost BENCH_COST=12, a tenth of that).
 */
import { buildApp } from '../app.ts'
import { loadConfig } from '../plugins/config.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { freshDatabase } from '../test/helpers/database.ts'
import { createUser } from '../test/helpers/fixtures.ts'

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 300)
const COST = process.env.BENCH_COST ?? '12'
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 20)

function mannWhitneyZ(a: number[], b: number[]): number {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v)
  const ranks = new Array<number>(all.length)
  for (let i = 0; i < all.length; ) {
    let j = i
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++
    for (let k = i; k <= j; k++) ranks[k] = (i + j) / 2 + 1
    i = j + 1
  }
  const rankSumA = all.reduce((s, x, i) => (x.g === 0 ? s + ranks[i] : s), 0)
  const u = rankSumA - (a.length * (a.length + 1)) / 2
  const mean = (a.length * b.length) / 2
  const sd = Math.sqrt((a.length * b.length * (a.length + b.length + 1)) / 12)
  return (u - mean) / sd
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

async function main() {
  const database = await freshDatabase()
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
    BCRYPT_COST: COST,
    LOG_LEVEL: 'silent',
    JOBS_ENABLED: 'false',
    RATE_LIMIT_ENABLED: 'false',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    DATABASE_URL: process.env.DATABASE_URL,
  })
  const app = await buildApp({ config, database, logger: false })
  await app.ready()
  const client = await createClientAppRepository(app.db).create('bench')
  const known = await createUser(app)
  const unverified = await createUser(app, { verified: false })

  async function time(url: string, payload: object): Promise<number> {
    const start = process.hrtime.bigint()
    const res = await app.inject({ method: 'POST', url, headers: { 'x-auth-token': client.x_auth_token }, payload })
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
    await app.afterAnswer.idle()
    // A pause, so what the queued work left behind (garbage, the embedded database's housekeeping)
    // is not charged to whichever request comes next.
    await new Promise((r) => setTimeout(r, PAUSE_MS))
    return ms
  }

  const registration = (email: string) => ({
    email,
    password: 'Kelp-Forest-9!',
    first_name: 'B',
    last_name: 'M',
    toc_accepted_at: '2024-07-01T12:34:56Z',
    privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
  })
  const routes: Array<{
    name: string
    n: number
    known: (i: number) => Promise<number>
    unknown: (i: number) => Promise<number>
  }> = [
    {
      name: 'forgot_password',
      n: SAMPLES,
      known: () => time('/v1/auth/forgot_password', { email: known.email }),
      unknown: (i) => time('/v1/auth/forgot_password', { email: `nobody-${i}@bench.local` }),
    },
    {
      name: 'resend_verification',
      n: SAMPLES,
      known: () => time('/v1/auth/resend_verification', { email: unverified.email }),
      unknown: (i) => time('/v1/auth/resend_verification', { email: `nobody-${i}@bench.local` }),
    },
    {
      name: `register (bcrypt cost ${COST})`,
      n: Math.max(10, Math.round(SAMPLES / 10)),
      known: () => time('/v1/auth/register', registration(known.email)),
      unknown: (i) => time('/v1/auth/register', registration(`new-${i}@bench.local`)),
    },
  ]

  console.log(`database: ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`)
  for (const route of routes) {
    // Warm up both paths.
    for (let i = 0; i < 5; i++) {
      await route.known(-i - 1)
      await route.unknown(-i - 1)
    }
    const a: number[] = []
    const b: number[] = []
    for (let i = 0; i < route.n; i++) {
      a.push(await route.known(i))
      b.push(await route.unknown(i))
    }
    const ma = median(a)
    const mb = median(b)
    const z = mannWhitneyZ(a, b)
    console.log(
      `${route.name}: n=${route.n} each, median known ${ma.toFixed(2)} ms, unknown ${mb.toFixed(2)} ms, ` +
        `difference ${(ma - mb).toFixed(2)} ms (${(((ma - mb) / mb) * 100).toFixed(1)} %), Mann-Whitney z=${z.toFixed(2)}`,
    )
  }
  await app.close()
  await database.close()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
