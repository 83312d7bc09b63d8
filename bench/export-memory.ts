/**
 * Memory of the streamed account export (issue 4): a user with SAMPLES heart-rate samples downloads
 * GET /v1/users/me/export from the real server, started as a child process; the server's RSS is read
 * from /proc every 20 ms before, during and after the download.
 *   npm run bench:export                                  (PGlite in a temp folder)
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
import { createUserRepository } from '../routes/user/repository.ts'
import { freshDatabase } from '../test/helpers/database.ts'
import { startServer } from '../test/helpers/processes.ts'

const SAMPLES = Number(process.env.SAMPLES ?? 100_000)
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
// Seeded in SQL so that nothing of it sits in any Node process's memory.
await database.db.execute(sql`
  insert into measurements (user_id, type, measured_at, device_id, value)
  select ${user.id}, 'heart_rate', now() - make_interval(secs => s), 'watch-1', 55 + (s % 40)
  from generate_series(1, ${SAMPLES}) s`)
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

await new Promise((r) => setTimeout(r, 500))
const before = rssKb(pid)
let peak = before
const timer = setInterval(() => {
  peak = Math.max(peak, rssKb(pid))
}, 20)
const started = Date.now()
const bytes = await new Promise<number>((resolve, reject) => {
  const req = request(`${server.url}/v1/users/me/export`, { headers: { authorization: `Bearer ${access}` } }, (res) => {
    let n = 0
    let tail = ''
    res.on('data', (c: Buffer) => {
      n += c.length
      tail = (tail + c.toString('utf8')).slice(-2)
    })
    res.on('end', () => (tail === '}}' ? resolve(n) : reject(new Error('export cut short'))))
    res.on('error', reject)
  })
  req.on('error', reject)
  req.end()
})
clearInterval(timer)
const seconds = (Date.now() - started) / 1000
await new Promise((r) => setTimeout(r, 500))
const after = rssKb(pid)
await server.stop()
if (pgUrl) await database.close()
if (dataDir) rmSync(dataDir, { recursive: true, force: true })

console.log(
  JSON.stringify(
    {
      bench: 'export-memory',
      database: pgUrl ? 'postgres' : 'pglite',
      samples: SAMPLES,
      document: mb(bytes / 1024),
      seconds,
      server_rss: { before: mb(before), peak: mb(peak), after: mb(after), growth_at_peak: mb(peak - before) },
    },
    null,
    2,
  ),
)
