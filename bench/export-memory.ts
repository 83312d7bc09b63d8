/**
 * Memory of the streamed account export: a user with ROWS rows (login attempts stand in for any
 * domain's rows until the measurement domain is merged), downloaded over loopback HTTP.
 * Prints RSS and heap before, at the peak during, and after the download.
 *   node --import tsx --expose-gc bench/export-memory.ts            (PGlite, in-process)
 *   DATABASE_URL=postgres://… node --import tsx --expose-gc bench/export-memory.ts
 */
import { request } from 'node:http'
import { buildApp } from '../app.ts'
import { loginAttempts } from '../db/schema/index.ts'
import { testConfig } from '../test/helpers/app.ts'
import { freshDatabase } from '../test/helpers/database.ts'
import { login, userWithToken } from '../test/helpers/fixtures.ts'

const ROWS = Number(process.env.ROWS ?? 100_000)
const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`
const gc = () => (globalThis as { gc?: () => void }).gc?.()

const database = await freshDatabase()
const app = await buildApp({ config: testConfig(), database, logger: false })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as { port: number }).port
const a = await userWithToken(app)
await login(app, a.user)
const base = Date.now() - ROWS * 1000
for (let i = 0; i < ROWS; i += 5000) {
  const batch = Array.from({ length: Math.min(5000, ROWS - i) }, (_, j) => ({
    userId: a.user.id,
    email: a.user.email,
    success: (i + j) % 3 !== 0,
    reason: (i + j) % 3 === 0 ? 'invalid_credentials' : null,
    ip: '192.0.2.44',
    userAgent: 'NOWATCH/1.4.2 (iPhone; iOS 17.4.1; Scale/3.00)',
    createdAt: new Date(base + (i + j) * 1000),
  }))
  await app.db.insert(loginAttempts).values(batch)
}

gc()
const before = process.memoryUsage()
let peakRss = before.rss
let peakHeap = before.heapUsed
const timer = setInterval(() => {
  const m = process.memoryUsage()
  peakRss = Math.max(peakRss, m.rss)
  peakHeap = Math.max(peakHeap, m.heapUsed)
}, 20)

const started = Date.now()
const bytes = await new Promise<number>((resolve, reject) => {
  const req = request(
    { host: '127.0.0.1', port, path: '/v1/users/me/export', headers: { authorization: a.headers.authorization } },
    (res) => {
      let n = 0
      let tail = ''
      res.on('data', (c: Buffer) => {
        n += c.length
        tail = (tail + c.toString('utf8')).slice(-2)
      })
      res.on('end', () => (tail === '}}' ? resolve(n) : reject(new Error('export cut short'))))
      res.on('error', reject)
    },
  )
  req.on('error', reject)
  req.end()
})
clearInterval(timer)
gc()
const after = process.memoryUsage()

console.log(
  JSON.stringify(
    {
      database: database.kind,
      rows: ROWS,
      document: mb(bytes),
      seconds: (Date.now() - started) / 1000,
      rss: {
        before: mb(before.rss),
        peak: mb(peakRss),
        after: mb(after.rss),
        growth_at_peak: mb(peakRss - before.rss),
      },
      heap: { before: mb(before.heapUsed), peak: mb(peakHeap), after: mb(after.heapUsed) },
    },
    null,
    2,
  ),
)
await app.close()
await database.close()
