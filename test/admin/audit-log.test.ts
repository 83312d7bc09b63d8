import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { createUser } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'

t.test('admin: every action is in the audit log', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const other = await adminWithToken(app)
  const h = admin.headers
  const target = await createUser(app)
  const doomed = await createUser(app)
  const act = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers = h) =>
    app.inject({ method, url, headers: { ...headers, 'x-forwarded-for': '203.0.113.9' }, payload })

  await act('GET', '/v1/admin/users?email=example')
  await act('GET', `/v1/admin/users/${target.id}`)
  await act('POST', `/v1/admin/users/${target.id}/disable`, { reason: 'chargeback fraud' })
  await act('POST', `/v1/admin/users/${target.id}/enable`)
  await act('POST', `/v1/admin/users/${target.id}/sign-out`)
  await act('DELETE', `/v1/admin/users/${doomed.id}`)
  const client = (await act('POST', '/v1/admin/clients', { name: 'watch' })).json()
  await act('GET', '/v1/admin/clients')
  await act('POST', `/v1/admin/clients/${client.client_id}/rotate`)
  await act('POST', `/v1/admin/clients/${client.client_id}/revoke`)
  await act('GET', `/v1/admin/users/${target.id}`, undefined, other.headers)

  const res = await act('GET', `/v1/admin/audit-log?actor_id=${admin.user.id}`)
  t.equal(res.statusCode, 200)
  const entries = res.json().data as Array<Record<string, unknown>>
  t.same(
    entries.map((e) => e.action),
    [
      'client.revoke',
      'client.rotate',
      'client.list',
      'client.create',
      'user.delete',
      'user.sign_out',
      'user.enable',
      'user.disable',
      'user.get',
      'user.list',
    ],
  )
  t.match(
    entries.find((e) => e.action === 'user.disable'),
    {
      actor_id: admin.user.id,
      target_type: 'user',
      target_id: target.id,
      ip: '127.0.0.1',
      details: { reason: 'chargeback fraud', sessions_revoked: 0 },
      created: /Z$/,
    },
  )
  t.match(
    entries.find((e) => e.action === 'user.delete'),
    { target_id: doomed.id, details: null },
  )
  t.match(
    entries.find((e) => e.action === 'client.create'),
    { target_id: client.client_id, details: { name: 'watch' } },
  )
  t.notOk(res.body.includes(client.secret), 'never a secret')

  t.test('filters', async (t) => {
    const byTarget = (await act('GET', `/v1/admin/audit-log?target_type=user&target_id=${target.id}`)).json().data
    t.same(
      byTarget.map((e: { action: string }) => e.action),
      ['user.get', 'user.sign_out', 'user.enable', 'user.disable', 'user.get'],
    )
    t.equal(byTarget[0].actor_id, other.user.id)
    const deletes = (await act('GET', '/v1/admin/audit-log?action=user.delete')).json().data
    t.equal(deletes.length, 1)
    const future = (await act('GET', '/v1/admin/audit-log?from=2199-01-01T00:00:00Z')).json().data
    t.same(future, [])
    const past = (await act('GET', '/v1/admin/audit-log?to=2000-01-01T00:00:00Z')).json().data
    t.same(past, [])
    const bad = await act('GET', '/v1/admin/audit-log?from=yesterday')
    t.equal(bad.statusCode, 400)
    t.equal((await act('GET', '/v1/admin/audit-log?actor_id=nope')).statusCode, 400)
  })

  t.test('pages without gaps or repeats; reading the log is logged too', async (t) => {
    const ids: string[] = []
    let cursor: string | null = null
    let pages = 0
    const total = (await act('GET', '/v1/admin/audit-log?limit=1000')).json().data.length
    do {
      const page: { data: Array<{ id: string }>; next_cursor: string | null } = (
        await act('GET', `/v1/admin/audit-log?limit=4${cursor ? `&cursor=${cursor}` : ''}`)
      ).json()
      ids.push(...page.data.map((e: { id: string }) => e.id))
      cursor = page.next_cursor
      pages++
    } while (cursor && pages < 50)
    // Each page read adds an audit.list entry newer than the cursor: it never shifts the pages already read.
    t.equal(ids.length, total + 1)
    t.equal(new Set(ids).size, ids.length)
    const reads = (await act('GET', '/v1/admin/audit-log?action=audit.list&limit=1000')).json().data
    t.ok(reads.length >= pages)
  })
})
