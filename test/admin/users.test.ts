import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createUser, login, sharedClient, userWithToken } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'

t.test('admin: users', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const h = admin.headers
  const sandy = await createUser(app, { email: 'sandy.cheeks@treedome.example' })
  const pat = await userWithToken(app, { email: 'patrick_star@rock.example' })
  const others = []
  for (let i = 0; i < 5; i++) others.push(await createUser(app, { email: `krusty-${i}@krab.example` }))

  t.test('list newest first, search by any part of the e-mail, page by cursor', async (t) => {
    const all = await app.inject({ method: 'GET', url: '/v1/admin/users?limit=3', headers: h })
    t.equal(all.statusCode, 200)
    t.equal(all.json().data.length, 3)
    t.match(all.json().data[0], {
      email: 'krusty-4@krab.example',
      role: 'user',
      email_verified: true,
      disabled_at: null,
    })
    t.notOk('password_hash' in all.json().data[0])
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res: { json(): { data: Array<{ id: string }>; next_cursor: string | null } } = await app.inject({
        method: 'GET',
        url: `/v1/admin/users?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        headers: h,
      })
      seen.push(...res.json().data.map((u: { id: string }) => u.id))
      cursor = res.json().next_cursor
    } while (cursor)
    t.equal(seen.length, 8, 'every account once (7 users and the admin)')
    t.equal(new Set(seen).size, 8)

    const krab = await app.inject({ method: 'GET', url: '/v1/admin/users?email=KRAB.example', headers: h })
    t.equal(krab.json().data.length, 5)
    const one = await app.inject({ method: 'GET', url: '/v1/admin/users?email=sandy', headers: h })
    t.same(
      one.json().data.map((u: { id: string }) => u.id),
      [sandy.id],
    )
    // LIKE wildcards are literal: "_" matches the underscore only.
    const under = await app.inject({ method: 'GET', url: '/v1/admin/users?email=sandy_cheeks', headers: h })
    t.same(under.json().data, [])
    const real = await app.inject({ method: 'GET', url: '/v1/admin/users?email=patrick_', headers: h })
    t.equal(real.json().data.length, 1)
    const pct = await app.inject({ method: 'GET', url: '/v1/admin/users?email=%25', headers: h })
    t.same(pct.json().data, [])
  })

  t.test('get one, 404 for an unknown id', async (t) => {
    const res = await app.inject({ method: 'GET', url: `/v1/admin/users/${pat.user.id}`, headers: h })
    t.match(res.json(), { id: pat.user.id, email: pat.user.email, active_sessions: 1 })
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/admin/users/00000000-0000-4000-8000-000000000000',
      headers: h,
    })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().error, 'not_found')
  })

  t.test('disable ends every session at once and refuses login; enable allows login again', async (t) => {
    const second = await login(app, pat.user)
    const res = await app.inject({
      method: 'POST',
      url: `/v1/admin/users/${pat.user.id}/disable`,
      headers: h,
      payload: { reason: 'abuse report #12' },
    })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { id: pat.user.id, disabled_at: /Z$/ })
    for (const tokens of [pat.tokens, second]) {
      const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(tokens) })
      t.equal(me.statusCode, 401)
    }
    const refused = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': await sharedClient(app) },
      payload: { email: pat.user.email, password: pat.user.password },
    })
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().error, 'account_disabled')
    const again = await app.inject({
      method: 'POST',
      url: `/v1/admin/users/${pat.user.id}/disable`,
      headers: h,
      payload: { reason: 'again' },
    })
    t.equal(again.json().disabled_at, res.json().disabled_at, 'a second disable keeps the first time')
    const listed = await app.inject({ method: 'GET', url: '/v1/admin/users?disabled=true', headers: h })
    t.same(
      listed.json().data.map((u: { id: string }) => u.id),
      [pat.user.id],
    )

    const enabled = await app.inject({ method: 'POST', url: `/v1/admin/users/${pat.user.id}/enable`, headers: h })
    t.equal(enabled.json().disabled_at, null)
    t.equal(
      (await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(second) })).statusCode,
      401,
      'old sessions stay ended',
    )
    await login(app, pat.user)
  })

  t.test('sign-out ends every session and says how many', async (t) => {
    const s1 = await login(app, sandy)
    await login(app, sandy)
    const res = await app.inject({ method: 'POST', url: `/v1/admin/users/${sandy.id}/sign-out`, headers: h })
    t.same(res.json(), { status: 'success', sessions_revoked: 2 })
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(s1) })).statusCode, 401)
  })

  t.test('an admin cannot disable, sign out or delete their own account here', async (t) => {
    for (const [method, path] of [
      ['POST', 'disable'],
      ['POST', 'sign-out'],
      ['DELETE', ''],
    ] as const) {
      const res = await app.inject({
        method,
        url: `/v1/admin/users/${admin.user.id}${path ? `/${path}` : ''}`,
        headers: h,
        payload: path === 'disable' ? { reason: 'test' } : undefined,
      })
      t.equal(res.statusCode, 409, `${method} ${path}`)
      t.equal(res.json().error, 'cannot_target_self')
    }
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: h })).statusCode, 200)
  })

  t.test('unknown ids are 404 on every action; bad ids and bodies are 400', async (t) => {
    const id = '00000000-0000-4000-8000-000000000000'
    for (const [method, url] of [
      ['POST', `/v1/admin/users/${id}/disable`],
      ['POST', `/v1/admin/users/${id}/enable`],
      ['POST', `/v1/admin/users/${id}/sign-out`],
      ['DELETE', `/v1/admin/users/${id}`],
    ] as const) {
      const payload = url.endsWith('/disable') ? { reason: 'test' } : undefined
      t.equal((await app.inject({ method, url, headers: h, payload })).statusCode, 404, url)
    }
    t.equal((await app.inject({ method: 'GET', url: '/v1/admin/users/42', headers: h })).statusCode, 400)
    const noReason = await app.inject({ method: 'POST', url: `/v1/admin/users/${sandy.id}/disable`, headers: h })
    t.equal(noReason.statusCode, 400, 'disable needs a reason')
    const extra = await app.inject({
      method: 'POST',
      url: `/v1/admin/users/${sandy.id}/disable`,
      headers: h,
      payload: { reason: 'x', silently: true },
    })
    t.equal(extra.statusCode, 400)
  })
})
