import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { freshDatabase } from '../helpers/database.ts'
import { type ServerProcess, startServer } from '../helpers/processes.ts'
import { loginOver, seedUsers } from '../helpers/seed.ts'

// kill -9 of the real server in the middle of concurrent measurement uploads, on PostgreSQL.
const skip = process.env.DATABASE_URL ? false : 'runs in the PostgreSQL suite (DATABASE_URL set)'
const BATCH = 2000

t.test('kill -9 during uploads: every acknowledged batch is whole, no batch is partial', { skip }, async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const env = {
    DATABASE_URL: (database as { url?: string }).url as string,
    JOBS_ENABLED: 'false',
    RATE_LIMIT_ENABLED: 'false',
  }
  const clientToken = await seedUsers(database, ['crash@example.com'], 'crash test')

  let server: ServerProcess = await startServer(env)
  t.teardown(() => server.stop('SIGKILL'))
  const { access } = await loginOver(server.url, clientToken, 'crash@example.com')

  // Each batch is its own device, so what was stored of it can be counted afterwards.
  const acknowledged = new Set<string>()
  const sent = new Set<string>()
  const refused: string[] = []
  let killed = false
  const start = Date.now() - 60 * 86400_000
  async function uploader(worker: number) {
    for (let n = 0; !killed; n++) {
      const device = `w${worker}-b${n}`
      const base = start + (worker * 100 + n) * BATCH * 1000
      const samples = Array.from({ length: BATCH }, (_, i) => ({
        type: 'heart_rate',
        timestamp: new Date(base + i * 1000).toISOString(),
        value: 50 + (i % 60),
      }))
      sent.add(device)
      try {
        const res = await fetch(`${server.url}/v1/measurements`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${access}` },
          body: JSON.stringify({ device_id: device, samples }),
        })
        if (res.ok) acknowledged.add(device)
        else refused.push(`${res.status} ${await res.text()}`)
      } catch {
        return // the server is gone
      }
    }
  }
  const workers = Array.from({ length: 6 }, (_, w) => uploader(w))
  await new Promise((r) => setTimeout(r, 1500))
  killed = true
  server.child.kill('SIGKILL')
  await Promise.all(workers)
  t.ok(acknowledged.size > 0, `${acknowledged.size} batches acknowledged before the kill, ${sent.size} sent`)
  t.same(refused, [], 'no batch was refused before the kill')

  server = await startServer(env)
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'the server comes back on the same database')

  // Samples of closed hours go straight into blocks (direct-blocks.ts): a batch's samples are its rows and its blocks'.
  const counts = await queryRows<{ device_id: string; n: number }>(
    database.db,
    sql`select device_id, sum(n)::int as n
          from (select device_id, count(*) as n from measurements group by device_id
                union all
                select device_id, sum(count) as n from measurement_blocks group by device_id) s
         group by device_id`,
  )
  const stored = new Map(counts.map((c) => [c.device_id, c.n]))
  const partial = counts.filter((c) => c.n !== BATCH)
  t.same(partial, [], 'no batch is stored in part')
  const lost = [...acknowledged].filter((d) => stored.get(d) !== BATCH)
  t.same(lost, [], 'every acknowledged batch is stored whole')
  const [rollup] = await queryRows<{ raw: number; quarters: number }>(
    database.db,
    sql`select ((select count(*) from measurements) + (select coalesce(sum(count), 0) from measurement_blocks))::int as raw,
               (select coalesce(sum(count), 0)::int from measurement_quarters) as quarters`,
  )
  t.equal(rollup.quarters, rollup.raw, 'the 15-minute rollup matches the stored samples exactly')
  t.comment(`batches sent ${sent.size}, acknowledged ${acknowledged.size}, stored ${stored.size}`)
})
