import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { TEST_ENV, buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { startServer } from '../helpers/processes.ts'
import { startReceiver } from '../helpers/webhooks.ts'

const skip = process.env.DATABASE_URL ? false : 'runs in the PostgreSQL suite (DATABASE_URL set)'

t.test(
  'changes committed by another process are delivered once, with two workers sharing the queue',
  { skip },
  async (t) => {
    const database = await freshDatabase()
    t.teardown(() => database.close())
    const url = (database as { url?: string }).url as string
    const receiver = await startReceiver()
    t.teardown(() => receiver.close())

    // This process only sets things up (its jobs are off); the two servers do the writing and the sending.
    const app = await buildTestApp(t, { database, env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' } })
    const alice = await userWithToken(app)
    const env = {
      DATABASE_URL: url,
      JWT_SECRET: TEST_ENV.JWT_SECRET,
      JOBS_ENABLED: 'true',
      RATE_LIMIT_ENABLED: 'false',
      // The receiver is on loopback: a development setting, so not production.
      NODE_ENV: 'development',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    }
    const [a, b] = await Promise.all([startServer(env), startServer(env)])
    let stopped = false
    t.teardown(() => (stopped ? undefined : Promise.all([a.stop(), b.stop()])))

    const sub = await alice.call('POST', '/v1/webhooks', { url: receiver.url, event_types: ['checkin.created'] })
    t.equal(sub.status, 201)
    const N = 30
    const ids: string[] = []
    for (let i = 0; i < N; i++) {
      // Alternate the processes: both write, both workers run.
      const server = i % 2 === 0 ? a : b
      const res = await fetch(`${server.url}/v1/checkins`, {
        method: 'POST',
        headers: { ...alice.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ mood: 3 }),
      })
      t.equal(res.status, 201)
      ids.push(((await res.json()) as { id: string }).id)
    }

    // Wait until every event is in a delivered message (the workers poll every 250 ms).
    for (;;) {
      const [row] = await queryRows<{ events: number; open: number }>(
        database.db,
        sql`select (select count(*) from webhook_events e join webhook_messages m on m.id = e.message_id
                   where m.status = 'succeeded')::int as events,
                 (select count(*) from webhook_messages where status <> 'succeeded')::int as open`,
      )
      if (row.events === N && row.open === 0) break
      await new Promise((r) => setTimeout(r, 100))
    }
    // Stopping drains what is in flight, so a duplicate send would be in the receiver by now.
    await Promise.all([a.stop(), b.stop()])
    stopped = true

    const delivered = receiver.deliveries.map((d) => {
      const body = receiver.verify(sub.body.secret, d) as {
        type: string
        data: { id?: string; events?: Array<{ data: { id: string } }> }
      }
      return body.type === 'batch' ? (body.data.events ?? []).map((e) => e.data.id) : [body.data.id as string]
    })
    const got = delivered.flat()
    t.equal(new Set(receiver.deliveries.map((d) => d.id)).size, receiver.deliveries.length, 'each message sent once')
    t.equal(got.length, N, 'each change once')
    t.same([...got].sort(), [...ids].sort(), 'every change of both processes')
    const [attempts] = await queryRows<{ n: number; messages: number }>(
      database.db,
      sql`select (select count(*) from webhook_attempts)::int as n, (select count(*) from webhook_messages)::int as messages`,
    )
    t.equal(attempts.n, attempts.messages, 'one attempt per message')
  },
)
