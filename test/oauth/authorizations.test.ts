import t from 'tap'
import { login } from '../helpers/fixtures.ts'
import { createUser } from '../helpers/fixtures.ts'
import { FormAgent, bearer, discover, obtainTokens, registerClient, startOAuthApp } from '../helpers/oauth.ts'
import { rowsMentioning } from '../helpers/user.ts'

t.setTimeout(600_000)

t.test("the user's authorized apps: list, revoke (grant and every token), account deletion and export", async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const ctx = { url, as: await discover(issuer) }
  const coach = await registerClient(app, { name: 'Coach Platform' })
  const clinic = await registerClient(app, { name: 'Clinic Dashboard' })
  const a = await createUser(app)
  const b = await createUser(app)
  const aHeaders = bearer((await login(app, a)).access)
  const bHeaders = bearer((await login(app, b)).access)

  const agent = new FormAgent(url)
  const coachTokens = (await obtainTokens(ctx, coach, a, 'offline_access measurements:read journal:read', { agent }))
    .tokens
  // Consenting again with a new scope adds to the same grant.
  await obtainTokens(ctx, coach, a, 'measurements:read sleep:read', { agent })
  const clinicTokens = (await obtainTokens(ctx, clinic, a, 'measurements:read', { agent })).tokens
  const bTokens = (await obtainTokens(ctx, coach, b, 'measurements:read')).tokens
  // A token in use: last_used is written.
  await fetch(`${url}/v1/measurements/types`, { headers: bearer(coachTokens.access_token) })

  const list = await app.inject({ method: 'GET', url: '/v1/users/me/authorizations', headers: aHeaders })
  t.equal(list.statusCode, 200, list.body)
  const grants = list.json().data as Array<{
    id: string
    client_name: string
    scopes: string[]
    last_used: string | null
    granted: string
  }>
  t.same(grants.map((g) => g.client_name).sort(), ['Clinic Dashboard', 'Coach Platform'], 'one entry per app')
  const coachGrant = grants.find((g) => g.client_name === 'Coach Platform')
  t.same(new Set(coachGrant?.scopes), new Set(['offline_access', 'measurements:read', 'journal:read', 'sleep:read']))
  t.match(coachGrant, { client_id: coach.id, granted: /Z$/ })
  t.ok(coachGrant?.last_used, 'last used')
  t.equal(grants.find((g) => g.client_name === 'Clinic Dashboard')?.last_used, null)
  const page = await app.inject({ method: 'GET', url: '/v1/users/me/authorizations?limit=1', headers: aHeaders })
  const next = await app.inject({
    method: 'GET',
    url: `/v1/users/me/authorizations?limit=1&cursor=${encodeURIComponent(page.json().next_cursor)}`,
    headers: aHeaders,
  })
  t.same(
    [...page.json().data, ...next.json().data].map((g: { id: string }) => g.id).sort(),
    grants.map((g) => g.id).sort(),
    'cursor pagination',
  )

  t.test('BOLA: B neither sees nor revokes A’s grants', async (t) => {
    const bList = await app.inject({ method: 'GET', url: '/v1/users/me/authorizations', headers: bHeaders })
    t.same(
      bList.json().data.map((g: { client_name: string }) => g.client_name),
      ['Coach Platform'],
    )
    t.notOk(bList.body.includes(coachGrant?.id ?? '?'))
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/authorizations/${coachGrant?.id}`,
      headers: bHeaders,
    })
    t.equal(res.statusCode, 404)
    t.equal(res.json().error, 'not_found')
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(coachTokens.access_token) })).status, 200)
    // A third-party token cannot list or revoke grants either.
    const viaApp = await app.inject({
      method: 'GET',
      url: '/v1/users/me/authorizations',
      headers: bearer(coachTokens.access_token),
    })
    t.equal(viaApp.statusCode, 403)
  })

  t.test('revoking from the list ends the grant and every token of it at once', async (t) => {
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/authorizations/${coachGrant?.id}`,
      headers: aHeaders,
    })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'success' })
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(coachTokens.access_token) })).status, 401)
    const refresh = await fetch(ctx.as.token_endpoint as string, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${coach.id}:${coach.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: coachTokens.refresh_token as string }),
    })
    t.equal(refresh.status, 400)
    t.equal(((await refresh.json()) as { error: string }).error, 'invalid_grant')
    t.equal(
      (await fetch(`${url}/v1/measurements/types`, { headers: bearer(clinicTokens.access_token) })).status,
      200,
      'the other app keeps its access',
    )
    t.equal(
      (await fetch(`${url}/v1/measurements/types`, { headers: bearer(bTokens.access_token) })).status,
      200,
      'B’s grant to the same app is untouched',
    )
    const again = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/authorizations/${coachGrant?.id}`,
      headers: aHeaders,
    })
    t.equal(again.statusCode, 404)
    // The app asks again: the consent page again.
    const flow = await obtainTokens(ctx, coach, a, 'measurements:read', { agent })
    t.ok(flow.flow.sawConsent, 'consent asked again after a revocation')
  })

  t.test('the export lists the grants; deleting the account removes them', async (t) => {
    const exported = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: aHeaders })
    t.equal(exported.statusCode, 200)
    const section = JSON.parse(exported.body).sections.oauth_authorizations
    t.same(section.map((g: { client_name: string }) => g.client_name).sort(), ['Clinic Dashboard', 'Coach Platform'])
    t.notOk(exported.body.includes(bTokens.access_token))
    const del = await app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: aHeaders,
      payload: { password: a.password },
    })
    t.equal(del.statusCode, 200, del.body)
    t.same(await rowsMentioning(app, [a.id, a.email]), [], 'no row mentions A, in the OAuth tables either')
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(clinicTokens.access_token) })).status, 401)
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(bTokens.access_token) })).status, 200)
  })
})
