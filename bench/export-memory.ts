/**
 * Memory of the streamed account export (issues 4 and 22): a user with SAMPLES heart-rate samples, one
 * every STEP_S seconds (default 1), and SLEEP_NIGHTS nights of sleep stages downloads
 * GET /v1/users/me/export?format=F for each F of FORMATS from the real server, started as a child
 * process; the server's RSS is read from /proc every 20 ms before, during and after each download.
 *   npm run bench:export                                  (PGlite in a temp folder)
 *   SAMPLES=525600 STEP_S=60 SLEEP_NIGHTS=365 npm run bench:export   (a year of 1-minute data)
 *   DATABASE_URL=postgres://… npm run bench:export        (a fresh database on that server)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { openDatabase } from '../db/client.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { ensurePartitionsBetween } from '../routes/measurement/partitions.ts'
import { createUserRepository } from '../routes/user/repository.ts'
import { freshDatabase } from '../test/helpers/database.ts'
import { startServer } from '../test/helpers/processes.ts'

const SAMPLES = Number(process.env.SAMPLES ?? 100_000)
const STEP_S = Number(process.env.STEP_S ?? 1)
const SLEEP_NIGHTS = Number(process.env.SLEEP_NIGHTS ?? 0)
const FORMATS = (process.env.FORMATS ?? 'json,fhir,omh,csv').split(',')
/** How each format's download is known to be whole: the last bytes it must end with. */
const ENDINGS: Record<string, (tail: Buffer) => boolean> = {
  json: (b) => b.toString('utf8').endsWith('}}'),
  fhir: (b) => b.toString('utf8').endsWith(']}'),
  omh: (b) => b.toString('utf8').endsWith(']'),
  // The zip's end-of-central-directory record (PK\x05\x06) is in its last 22 bytes when there is no comment.
  csv: (b) => b.subarray(-22).readUInt32LE(0) === 0x06054b50,
}
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)

const pgUrl = process.env.DATABASE_URL
const dataDir = pgUrl ? undefined : mkdtempSync(join(tmpdir(), 'nowatch-export-bench-'))
const database = pgUrl ? await freshDatabase() : await openDatabase({ dataDir })
if (!pgUrl) await database.migrate()

const client = await createClientAppRepository(database.db).create('bench')
const now = new Date()
const user = await createUserRepository(database.db).create({
  email: 'export-bench@example.com',
  passwordHash: await hashPassword('Tide-Pool-42!', 4),
  firstName: 'Export',
  lastName: 'Bench',
  tocAcceptedAt: now,
  privacyPolicyAcceptedAt: now,
  emailVerifiedAt: now,
})
if (!user) throw new Error('no user')
// Seeded in SQL so that nothing of it sits in any Node process's memory; the months' partitions first.
await ensurePartitionsBetween(
  database.db,
  'measurements',
  Date.now() - Math.max(SAMPLES * STEP_S * 1000, (SLEEP_NIGHTS + 1) * 86400_000),
  Date.now(),
)
await database.db.execute(sql`
  insert into measurements (user_id, type, measured_at, device_id, value)
  select ${user.id}, 'heart_rate', now() - make_interval(secs => s * ${STEP_S}), 'watch-1', 55 + (s % 40)
  from generate_series(1, ${SAMPLES}) s`)
// Nights from 22:00 UTC, a stage every 5 minutes for 8 hours, ending awake.
await database.db.execute(sql`
  insert into measurements (user_id, type, measured_at, device_id, value)
  select ${user.id}, 'sleep_stage', date_trunc('day', now()) - make_interval(days => d, hours => 2, mins => -5 * i),
         'watch-1', case when i = 96 then 0 else 1 + i % 3 end
  from generate_series(1, ${SLEEP_NIGHTS}) d, generate_series(0, 96) i`)
// The 15-minute rollup the ingest route keeps (its finer columns left empty: the export does not read them).
await database.db.execute(sql`
  insert into measurement_quarters (user_id, type, quarter, count, sum, min, max, w0_count, w0_sum, w1_count, w1_sum,
                                    w2_count, w2_sum, minute_mask)
  select user_id, type, date_bin('15 minutes', measured_at, timestamptz '2000-01-01T00:00:00Z'), count(*), sum(value),
         min(value), max(value), 0, 0, 0, 0, 0, 0, 0
  from measurements where user_id = ${user.id} group by 1, 2, 3`)
const serverEnv: Record<string, string> = pgUrl
  ? { DATABASE_URL: (database as { url?: string }).url as string }
  : { NODE_ENV: 'development', DATA_DIR: dataDir as string }
if (!pgUrl) await database.close()

const server = await startServer({ ...serverEnv, JOBS_ENABLED: 'false', RATE_LIMIT_ENABLED: 'false' })
const pid = server.child.pid as number
const login = await fetch(`${server.url}/v2/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-auth-token': client.x_auth_token },
  body: JSON.stringify({ email: user.email, password: 'Tide-Pool-42!' }),
})
const { access } = (await login.json()) as { access: string }

async function measure(format: string) {
  await new Promise((r) => setTimeout(r, 500))
  const before = rssKb(pid)
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, rssKb(pid))
  }, 20)
  const started = Date.now()
  const bytes = await new Promise<number>((resolve, reject) => {
    const url = `${server.url}/v1/users/me/export?format=${format}`
    const req = request(url, { headers: { authorization: `Bearer ${access}` } }, (res) => {
      let n = 0
      let tail = Buffer.alloc(0)
      res.on('data', (c: Buffer) => {
        n += c.length
        tail = Buffer.concat([tail, c]).subarray(-64)
      })
      res.on('end', () =>
        res.statusCode === 200 && ENDINGS[format](tail) ? resolve(n) : reject(new Error(`${format} export cut short`)),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  clearInterval(timer)
  const seconds = (Date.now() - started) / 1000
  await new Promise((r) => setTimeout(r, 500))
  const after = rssKb(pid)
  return {
    format,
    document: mb(bytes / 1024),
    seconds,
    server_rss: { before: mb(before), peak: mb(peak), after: mb(after), growth_at_peak: mb(peak - before) },
  }
}

const results = []
for (const format of FORMATS) results.push(await measure(format))
await server.stop()
if (pgUrl) await database.close()
if (dataDir) rmSync(dataDir, { recursive: true, force: true })

console.log(
  JSON.stringify(
    {
      bench: 'export-memory',
      database: pgUrl ? 'postgres' : 'pglite',
      samples: SAMPLES,
      step_s: STEP_S,
      sleep_nights: SLEEP_NIGHTS,
      results,
    },
    null,
    2,
  ),
)
