import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { openDatabase, queryRows } from '../../db/client.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'

const skip = process.env.DATABASE_URL
  ? false
  : 'runs in the PostgreSQL suite (DATABASE_URL set): two workers on two pools'

t.test('WEBHOOK_MAX_IN_FLIGHT holds across two workers, each on its own connection pool', { skip }, async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  // The second worker reaches the same database through a pool of its own, as another process would.
  const second = await openDatabase({ databaseUrl: database.url })
  t.teardown(() => second.close())
  const env = { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_MAX_IN_FLIGHT: '2', WEBHOOK_TIMEOUT_MS: '60000' }
  const a = await buildTestApp(t, { database, env })
  const b = await buildTestApp(t, { database: second, env })

  // A receiver that holds every request open until told, counting how many are open at once.
  let open = 0
  let most = 0
  let seen = 0
  const held: Array<() => void> = []
  const server: Server = createServer((req, res) => {
    req.resume()
    open++
    seen++
    most = Math.max(most, open)
    held.push(() => {
      open--
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const release of held.splice(0)) release()
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`

  const alice = await userWithToken(a)
  const sub = await alice.call('POST', '/v1/webhooks', { url, event_types: ['checkin.created'] })
  t.equal(sub.status, 201)
  const N = 8
  // Test events: one message each, all due at once.
  for (let i = 0; i < N; i++) t.equal((await alice.call('POST', `/v1/webhooks/${sub.body.id}/test`)).status, 202)

  const leased = async () =>
    (
      await queryRows<{ n: number }>(
        database.db,
        sql`select count(*)::int as n from webhook_messages where leased_until > now()`,
      )
    )[0].n
  // Both workers claim again and again, at the same time, while nothing is answered.
  for (let round = 0; round < 5; round++) {
    await Promise.all([a.webhooks.flush({ wait: false }), b.webhooks.flush({ wait: false })])
  }
  for (let i = 0; i < 100 && seen < 2; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(await leased(), 2, 'two messages leased')
  t.equal(most, 2, 'two requests open at the receiver, not two per worker')

  // Answering frees a slot: the next claims take more, never past the cap.
  let delivered = 0
  while (delivered < N) {
    const release = held.shift()
    if (release) {
      release()
      delivered++
    }
    await Promise.all([a.webhooks.flush({ wait: false }), b.webhooks.flush({ wait: false })])
    await new Promise((r) => setTimeout(r, 20))
    t.ok((await leased()) <= 2, 'never more than two leased')
  }
  await Promise.all([a.webhooks.idle(), b.webhooks.idle()])
  t.equal(most, 2, 'at most two open at once all along')
  t.equal(seen, N, 'each message sent once')
  const [row] = await queryRows<{ succeeded: number; leased: number }>(
    database.db,
    sql`select count(*) filter (where status = 'succeeded')::int as succeeded,
               count(*) filter (where leased_until is not null)::int as leased
          from webhook_messages`,
  )
  t.same(row, { succeeded: N, leased: 0 }, 'every message delivered, no lease left')
})
