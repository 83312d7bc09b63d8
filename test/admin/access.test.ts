import { readFile } from 'node:fs/promises'
import { desc, sql } from 'drizzle-orm'
import t from 'tap'
import { parse } from 'yaml'
import { auditLog } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'

// Every admin operation of the contract, read from openapi.yaml, so a route added later is covered.
async function adminOperations(): Promise<Array<{ method: string; url: string }>> {
  const spec = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  const ops: Array<{ method: string; url: string }> = []
  for (const [path, item] of Object.entries<Record<string, { tags?: string[] }>>(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op.tags?.some((tag) => tag.startsWith('admin')) && !path.includes('/admin/')) continue
      ops.push({
        method: method.toUpperCase(),
        url: path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000'),
      })
    }
  }
  return ops
}

t.test('only admins pass the admin routes', async (t) => {
  const app = await buildTestApp(t)
  const user = await userWithToken(app)
  const admin = await adminWithToken(app)
  const ops = await adminOperations()
  t.ok(ops.length >= 10, `${ops.length} admin operations`)
  for (const op of ops) {
    const where = `${op.method} ${op.url}`
    const anon = await app.inject({
      method: op.method as 'GET',
      url: op.url,
      payload: op.method === 'GET' ? undefined : {},
    })
    t.equal(anon.statusCode, 401, `${where} without a token`)
    const res = await app.inject({
      method: op.method as 'GET',
      url: op.url,
      headers: user.headers,
      payload: op.method === 'GET' ? undefined : {},
    })
    t.equal(res.statusCode, 403, `${where} as a user`)
    t.same(res.json(), { error: 'forbidden', message: 'This route is for administrators.' }, where)
    const asAdmin = await app.inject({
      method: op.method as 'GET',
      url: op.url,
      headers: admin.headers,
      payload: op.method === 'GET' ? undefined : {},
    })
    t.not(asAdmin.statusCode, 403, `${where} as an admin`)
    t.not(asAdmin.statusCode, 401, `${where} as an admin`)
  }
})

t.test('every admin operation, whatever its outcome, leaves an audit entry', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const user = await userWithToken(app)
  const count = async () => (await app.db.select({ n: sql<number>`count(*)::int` }).from(auditLog))[0].n
  const ops = await adminOperations()
  t.ok(
    ops.some((op) => op.url.startsWith('/v1/admin/telemetry/')),
    'the telemetry reads are admin operations too',
  )
  for (const op of ops) {
    const where = `${op.method} ${op.url}`
    const before = await count()
    const res = await app.inject({
      method: op.method as 'GET',
      url: op.url,
      headers: admin.headers,
      payload: op.method === 'GET' ? undefined : {},
    })
    t.ok((await count()) > before, `${where} (${res.statusCode}) is audited`)
    const refused = await app.inject({
      method: op.method as 'GET',
      url: op.url,
      headers: user.headers,
      payload: op.method === 'GET' ? undefined : {},
    })
    t.equal(refused.statusCode, 403)
  }

  t.test('the telemetry reads name what was read', async (t) => {
    await app.inject({ method: 'GET', url: '/v1/admin/telemetry/logs?q=heart', headers: admin.headers })
    const [row] = await app.db.select().from(auditLog).orderBy(desc(auditLog.createdAt)).limit(1)
    t.match(row, { actorId: admin.user.id, action: 'telemetry.logs.read', details: { q: 'heart' } })
  })

  t.test('an admin signing a user out through /v1/auth/sign-out is audited', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/sign-out',
      headers: admin.headers,
      payload: { email: user.user.email },
    })
    t.equal(res.statusCode, 200)
    const [row] = await app.db.select().from(auditLog).orderBy(desc(auditLog.createdAt)).limit(1)
    t.match(row, {
      actorId: admin.user.id,
      action: 'user.sign_out',
      targetType: 'user',
      targetId: user.user.id,
      details: { sessions_revoked: 1, via: '/v1/auth/sign-out' },
    })
    const self = await userWithToken(app)
    const before = await count()
    await app.inject({
      method: 'POST',
      url: '/v1/auth/sign-out',
      headers: self.headers,
      payload: { email: self.user.email },
    })
    t.equal(await count(), before, 'signing oneself out is no admin action')
  })
})
