import { eq } from 'drizzle-orm'
import t from 'tap'
import { clientApps } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { createClient, createUser } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'

t.test('admin: client apps', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const h = admin.headers
  const user = await createUser(app)
  const loginWith = (token: string) =>
    app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': token },
      payload: { email: user.email, password: user.password },
    })

  const created = await app.inject({
    method: 'POST',
    url: '/v1/admin/clients',
    headers: h,
    payload: { name: ' Android ' },
  })
  t.equal(created.statusCode, 201, created.body)
  const issued = created.json()
  t.match(issued, { client_id: /^[0-9a-f-]{36}$/, name: 'Android', secret: /.{40,}/, created: /Z$/ })
  t.equal(Buffer.from(issued.x_auth_token, 'base64').toString(), `${issued.secret}+${issued.client_id}`)
  t.equal((await loginWith(issued.x_auth_token)).statusCode, 200, 'its token works')

  t.test('the list never shows a secret', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/admin/clients', headers: h })
    t.equal(res.statusCode, 200)
    const row = res.json().data.find((c: { id: string }) => c.id === issued.client_id)
    t.same(Object.keys(row).sort(), ['created', 'id', 'name', 'revoked', 'rotated'])
    t.notOk(res.body.includes(issued.secret))
  })

  t.test('rotate: the old secret overlaps for a while, then only the new one works', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/v1/admin/clients/${issued.client_id}/rotate`, headers: h })
    t.equal(res.statusCode, 200)
    const next = res.json()
    t.equal(next.client_id, issued.client_id)
    t.not(next.secret, issued.secret)
    t.equal((await loginWith(issued.x_auth_token)).statusCode, 200, 'the old secret works during the default overlap')
    t.equal((await loginWith(next.x_auth_token)).statusCode, 200)
    const [entry] = (
      await app.inject({ method: 'GET', url: '/v1/admin/audit-log?action=client.rotate', headers: h })
    ).json().data
    t.same(entry.details, { overlap_s: 86400 }, 'the overlap is audited')

    const third = await app.inject({
      method: 'POST',
      url: `/v1/admin/clients/${issued.client_id}/rotate`,
      headers: h,
      payload: { overlap_s: 0 },
    })
    t.equal(third.statusCode, 200)
    for (const old of [issued.x_auth_token, next.x_auth_token]) {
      const refused = await loginWith(old)
      t.equal(refused.statusCode, 401, 'overlap 0: every older secret stops at once')
      t.equal(refused.json().error, 'invalid_client')
    }
    t.equal((await loginWith(third.json().x_auth_token)).statusCode, 200)

    const fourth = await app.inject({
      method: 'POST',
      url: `/v1/admin/clients/${issued.client_id}/rotate`,
      headers: h,
      payload: { overlap_s: 60 },
    })
    const fifth = await app.inject({
      method: 'POST',
      url: `/v1/admin/clients/${issued.client_id}/rotate`,
      headers: h,
      payload: { overlap_s: 60 },
    })
    t.equal((await loginWith(third.json().x_auth_token)).statusCode, 401, 'only the secret just replaced overlaps')
    t.equal((await loginWith(fourth.json().x_auth_token)).statusCode, 200)
    t.equal((await loginWith(fifth.json().x_auth_token)).statusCode, 200)
    await app.db
      .update(clientApps)
      .set({ previousSecretExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(clientApps.id, issued.client_id))
    t.equal((await loginWith(fourth.json().x_auth_token)).statusCode, 401, 'past its overlap the old secret stops')
    for (const payload of [{ overlap_s: -1 }, { overlap_s: 2592001 }, { overlap_s: 'x' }, { other: 1 }]) {
      const bad = await app.inject({
        method: 'POST',
        url: `/v1/admin/clients/${issued.client_id}/rotate`,
        headers: h,
        payload,
      })
      t.equal(bad.statusCode, 400, JSON.stringify(payload))
      t.equal(bad.json().error, 'validation_failed')
    }
    issued.x_auth_token = fifth.json().x_auth_token
  })

  t.test('revoke: its token is refused from the next request, and its sessions end', async (t) => {
    const session = (await loginWith(issued.x_auth_token)).json()
    const otherClient = await createClient(app, 'other app')
    const elsewhere = (await loginWith(otherClient.x_auth_token)).json()
    const me = (tokens: { access: string }) =>
      app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${tokens.access}` } })
    // Read once, so this process has the session cached as live: the revocation must forget it.
    t.equal((await me(session)).statusCode, 200)
    const res = await app.inject({ method: 'POST', url: `/v1/admin/clients/${issued.client_id}/revoke`, headers: h })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { id: issued.client_id, revoked: /Z$/ })
    t.equal((await loginWith(issued.x_auth_token)).statusCode, 401)
    const ended = await me(session)
    t.equal(ended.statusCode, 401, 'its access token stops at once in this process')
    t.equal(ended.json().error, 'session_revoked')
    t.equal((await me(elsewhere)).statusCode, 200, "another app's session lives on")
    const [entry] = (
      await app.inject({ method: 'GET', url: '/v1/admin/audit-log?action=client.revoke', headers: h })
    ).json().data
    t.ok((entry.details as { sessions_revoked: number }).sessions_revoked >= 1, 'the audit says how many ended')
    const again = await app.inject({ method: 'POST', url: `/v1/admin/clients/${issued.client_id}/revoke`, headers: h })
    t.equal(again.json().revoked, res.json().revoked, 'revoking twice keeps the first time')
    const rotate = await app.inject({ method: 'POST', url: `/v1/admin/clients/${issued.client_id}/rotate`, headers: h })
    t.equal(rotate.statusCode, 409)
    t.equal(rotate.json().error, 'client_revoked')
  })

  t.test('unknown ids and bad bodies', async (t) => {
    const id = '00000000-0000-4000-8000-000000000000'
    t.equal((await app.inject({ method: 'POST', url: `/v1/admin/clients/${id}/rotate`, headers: h })).statusCode, 404)
    t.equal((await app.inject({ method: 'POST', url: `/v1/admin/clients/${id}/revoke`, headers: h })).statusCode, 404)
    for (const payload of [
      {},
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(101) },
      { name: 'a', secret: 'mine' },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/v1/admin/clients', headers: h, payload })
      t.equal(res.statusCode, 400, JSON.stringify(payload))
    }
  })

  t.test('the list pages newest first', async (t) => {
    for (let i = 0; i < 4; i++) {
      await app.inject({ method: 'POST', url: '/v1/admin/clients', headers: h, payload: { name: `app ${i}` } })
    }
    const first = (await app.inject({ method: 'GET', url: '/v1/admin/clients?limit=2', headers: h })).json()
    t.same(
      first.data.map((c: { name: string }) => c.name),
      ['app 3', 'app 2'],
    )
    const rest = (
      await app.inject({ method: 'GET', url: `/v1/admin/clients?limit=50&cursor=${first.next_cursor}`, headers: h })
    ).json()
    t.equal(rest.next_cursor, null)
    t.ok(rest.data.length >= 3)
    t.notOk(rest.data.some((c: { id: string }) => first.data.some((f: { id: string }) => f.id === c.id)))
  })
})
