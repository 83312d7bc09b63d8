import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'

// Every admin operation of the contract, read from openapi.yaml, so a route added later is covered.
async function adminOperations(): Promise<Array<{ method: string; url: string }>> {
  const spec = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  const ops: Array<{ method: string; url: string }> = []
  for (const [path, item] of Object.entries<Record<string, { tags?: string[] }>>(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op.tags?.some((tag) => tag.startsWith('admin'))) continue
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
