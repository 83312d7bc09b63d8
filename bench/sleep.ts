/**
 * Sleep read cost (issue 22): sleep is derived on every read from the sleep_stage samples, so this measures
 * what a read of NIGHTS nights costs. A user gets NIGHTS nights of stages every EPOCH_S seconds (30 s, as
 * most watches record them: 960 samples a night) and a heart rate each minute in bed, seeded in SQL; then
 * GET /v1/sleep/daily over the whole range and GET /v1/sleep (first page of 50) run RUNS times each
 * through app.inject, and p50/max are printed. Not a test: figures go to BENCHMARKS.md.
 *   npm run bench:sleep                               (PGlite in a temp folder)
 *   DATABASE_URL=postgres://… npm run bench:sleep     (a fresh database on that server)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { buildApp } from '../app.ts'
import { openDatabase } from '../db/client.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { ensurePartitionsBetween } from '../routes/measurement/partitions.ts'
import { createUserRepository } from '../routes/user/repository.ts'
import { testConfig } from '../test/helpers/app.ts'
import { freshDatabase } from '../test/helpers/database.ts'

const NIGHTS = Number(process.env.NIGHTS ?? 366)
const EPOCH_S = Number(process.env.EPOCH_S ?? 30)
const RUNS = Number(process.env.RUNS ?? 10)

const pgUrl = process.env.DATABASE_URL
const dataDir = pgUrl ? undefined : mkdtempSync(join(tmpdir(), 'nowatch-sleep-bench-'))
const database = pgUrl ? await freshDatabase() : await openDatabase({ dataDir })
if (!pgUrl) await database.migrate()
const { db } = database

const client = await createClientAppRepository(db).create('bench')
const now = new Date()
const password = 'Sleep-Bench-42!'
const user = await createUserRepository(db).create({
  email: 'sleep-bench@example.com',
  passwordHash: await hashPassword(password, 4),
  firstName: 'Sleep',
  lastName: 'Bench',
  tocAcceptedAt: now,
  privacyPolicyAcceptedAt: now,
  emailVerifiedAt: now,
})
if (!user) throw new Error('no user')
const perNight = Math.floor((8 * 3600) / EPOCH_S)
const seedStart = Date.now()
await ensurePartitionsBetween(db, 'measurements', Date.now() - (NIGHTS + 1) * 86400_000, Date.now())
// Nights from 22:00 UTC: stages cycling light → deep → REM in 10-minute blocks, a closing awake sample.
await db.execute(sql`
  insert into measurements (user_id, type, measured_at, device_id, value)
  select ${user.id}, 'sleep_stage',
         date_trunc('day', now()) - make_interval(days => d, hours => 2) + make_interval(secs => i * ${EPOCH_S}),
         'watch-1', case when i = ${perNight} then 0 else 1 + (i * ${EPOCH_S} / 600) % 3 end
  from generate_series(1, ${NIGHTS}) d, generate_series(0, ${perNight}) i`)
// Heart rate once a minute through the nights (sleep vitals read the raw minutes).
await db.execute(sql`
  insert into measurements (user_id, type, measured_at, device_id, value)
  select ${user.id}, 'heart_rate', date_trunc('day', now()) - make_interval(days => d, hours => 2, mins => -m), 'watch-1',
         55 + m % 11
  from generate_series(1, ${NIGHTS}) d, generate_series(0, 479) m`)
const seeded = (Date.now() - seedStart) / 1000

const app = await buildApp({ config: testConfig(), database, logger: false })
await app.ready()
const login = await app.inject({
  method: 'POST',
  url: '/v2/auth/login',
  headers: { 'x-auth-token': client.x_auth_token },
  payload: { email: user.email, password },
})
const headers = { authorization: `Bearer ${login.json().access}` }
const day = (offset: number) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10)
const from = day(NIGHTS)
const to = day(1)

async function time(url: string) {
  const ms: number[] = []
  let body: { data: unknown[] } = { data: [] }
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    const res = await app.inject({ method: 'GET', url, headers })
    ms.push(performance.now() - t0)
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
    body = res.json()
  }
  ms.sort((a, b) => a - b)
  return {
    rows: body.data.length,
    p50_ms: Math.round(ms[Math.floor(ms.length / 2)]),
    max_ms: Math.round(ms.at(-1) ?? 0),
  }
}

const daily = await time(`/v1/sleep/daily?from=${from}&to=${to}`)
const list = await time(`/v1/sleep?from=${from}&to=${to}&limit=50`)
const statistics = await time(`/v1/statistics/daily?from=${day(30)}&to=${to}`)
await app.close()
await database.close()
if (dataDir) rmSync(dataDir, { recursive: true, force: true })

console.log(
  JSON.stringify(
    {
      bench: 'sleep',
      database: pgUrl ? 'postgres' : 'pglite',
      nights: NIGHTS,
      stage_samples: NIGHTS * (perNight + 1),
      seed_s: seeded,
      runs: RUNS,
      'GET /v1/sleep/daily (whole range)': daily,
      'GET /v1/sleep (first 50)': list,
      'GET /v1/statistics/daily (30 days)': statistics,
    },
    null,
    2,
  ),
)
