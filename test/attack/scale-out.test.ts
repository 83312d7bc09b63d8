import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { sql } from 'drizzle-orm'
import { SMTPServer } from 'smtp-server'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { createClientAppRepository } from '../../routes/clients/repository.ts'
import { revokeClientApp } from '../../routes/clients/revoke.ts'
import { freshDatabase } from '../helpers/database.ts'
import { startServer } from '../helpers/processes.ts'
import { SEED_PASSWORD, seedUsers } from '../helpers/seed.ts'

// Two server processes on one PostgreSQL database, as behind a load balancer.
const skip = process.env.DATABASE_URL ? false : 'runs in the PostgreSQL suite (DATABASE_URL set)'

t.test('two processes, one database: revocation, rate limits and jobs hold across both', { skip }, async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const url = (database as { url?: string }).url as string

  const received: string[] = []
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      stream.resume()
      stream.on('end', () => {
        received.push(...session.envelope.rcptTo.map((r) => r.address))
        cb()
      })
    },
  })
  smtp.listen(0, '127.0.0.1')
  await once(smtp.server, 'listening')
  t.teardown(() => new Promise<void>((r) => smtp.close(() => r())))

  const env = {
    DATABASE_URL: url,
    SESSION_CACHE_TTL_MS: '1000',
    RATE_LIMIT_ENABLED: 'true',
    JOBS_ENABLED: 'true',
    SMTP_URL: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
  }
  const [a, b] = await Promise.all([startServer(env), startServer(env)])
  t.teardown(() => Promise.all([a.stop(), b.stop()]))

  const clientToken = await seedUsers(database, ['scale@example.com'], 'scale-out')
  const post = (server: { url: string }, path: string, body: object, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': clientToken, ...headers },
      body: JSON.stringify(body),
    })

  t.test('a logout through one process is honoured by the other within SESSION_CACHE_TTL_MS', async (t) => {
    const tokens = (await (
      await post(a, '/v2/auth/login', { email: 'scale@example.com', password: SEED_PASSWORD })
    ).json()) as {
      access: string
    }
    const probe = (s: { url: string }) =>
      fetch(`${s.url}/v1/users/me/auth-history`, { headers: { authorization: `Bearer ${tokens.access}` } })
    t.equal((await probe(b)).status, 200)
    t.equal((await post(a, '/v1/auth/logout', {}, { authorization: `Bearer ${tokens.access}` })).status, 200)
    t.equal((await probe(a)).status, 401, 'at once where it happened')
    await new Promise((r) => setTimeout(r, 1100))
    t.equal((await probe(b)).status, 401, 'within the documented staleness on the other process')
  })

  t.test('each route has its own per-IP counter, one for both processes', async (t) => {
    // 31 refreshes, split over both processes, used to share the login's counter and make it a 429.
    for (let i = 0; i < 31; i++) {
      const res = await post(i % 2 ? a : b, '/v1/auth/refresh', { refresh: `not-a-token-${i}` })
      t.equal(res.status, 401)
    }
    const login = await post(a, '/v2/auth/login', { email: 'nobody@example.com', password: 'x' })
    t.equal(login.status, 401, 'the login still has its budget')
    const [row] = await queryRows<{ n: number }>(
      database.db,
      sql`select coalesce(sum(count), 0)::int as n from rate_counters where key = 'POST /v1/auth/refresh:ip:127.0.0.1'`,
    )
    t.equal(row.n, 31, 'both processes counted into the refresh route’s one counter')
    // The login limit below starts from a clean count.
    await database.db.execute(sql`delete from rate_counters where key = 'group login:ip:127.0.0.1'`)
  })
  t.test(
    'one refresh token on both processes at once: the same pair from each; a revoked app ends its sessions on both',
    async (t) => {
      const app = await createClientAppRepository(database.db).create('scale-out phone')
      const through = (server: { url: string }, path: string, body: object, headers: Record<string, string> = {}) =>
        post(server, path, body, { 'x-auth-token': app.x_auth_token, ...headers })
      const tokens = (await (
        await through(a, '/v2/auth/login', { email: 'scale@example.com', password: SEED_PASSWORD })
      ).json()) as { access: string; refresh: string }
      const [ra, rb] = await Promise.all([
        through(a, '/v1/auth/refresh', { refresh: tokens.refresh }),
        through(b, '/v1/auth/refresh', { refresh: tokens.refresh }),
      ])
      t.same([ra.status, rb.status], [200, 200], 'a phone waking with two requests in flight stays logged in')
      const [pa, pb] = [await ra.json(), await rb.json()]
      t.same(pa, pb, 'both processes answer the very same pair')
      const probe = (s: { url: string }) =>
        fetch(`${s.url}/v1/users/me`, { headers: { authorization: `Bearer ${(pa as { access: string }).access}` } })
      t.equal((await probe(b)).status, 200)
      const { ended } = await revokeClientApp(database.db, app.client_id)
      t.equal(ended.length, 1)
      await new Promise((r) => setTimeout(r, 1100))
      t.same([(await probe(a)).status, (await probe(b)).status], [401, 401], 'within SESSION_CACHE_TTL_MS on both')
    },
  )

  t.test('the per-IP login limit is one limit across both processes', async (t) => {
    // Windows are whole minutes: start early in one so the run does not straddle a boundary.
    const second = new Date().getUTCSeconds()
    if (second > 45) await new Promise((r) => setTimeout(r, (61 - second) * 1000))
    const served = { a: 0, b: 0 }
    let firstLimited = 0
    for (let i = 1; i <= 40 && !firstLimited; i++) {
      const server = i % 2 ? a : b
      const res = await post(server, '/v2/auth/login', { email: `nobody${i}@example.com`, password: 'x' })
      if (res.status === 429) firstLimited = i
      else served[server === a ? 'a' : 'b']++
    }
    t.ok(firstLimited > 0 && firstLimited <= 31, `limited at request ${firstLimited} (limit 30 per minute per IP)`)
    t.ok(served.a < 30 && served.b < 30, `neither process alone reached its own 30 (a ${served.a}, b ${served.b})`)
  })

  t.test('the mail worker runs once across processes: each message is sent exactly once', async (t) => {
    for (let i = 0; i < 8; i++) {
      const res = await post(i % 2 ? a : b, '/v1/auth/register', {
        email: `mail${i}@example.com`,
        password: 'Kelp-Forest-9!',
        first_name: 'M',
        last_name: String(i),
        toc_accepted_at: '2024-07-01T12:34:56Z',
        privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
      })
      t.equal(res.status, 200)
    }
    const deadline = Date.now() + 20_000
    while (received.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    await new Promise((r) => setTimeout(r, 2500))
    t.equal(received.length, 8, 'eight messages, no duplicates')
    t.equal(new Set(received).size, 8)
  })
})
