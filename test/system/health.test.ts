import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'

t.test('healthz and readyz answer on a migrated database', async (t) => {
  const app = await buildTestApp(t)
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  t.match(health.headers['x-request-id'], /.+/)

  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', database: process.env.DATABASE_URL ? 'postgres' : 'pglite' })
})
