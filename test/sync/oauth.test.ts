import { sql } from 'drizzle-orm'
import t from 'tap'
import { userWithToken } from '../helpers/fixtures.ts'
import { FormAgent, bearer, discover, obtainTokens, registerClient, startOAuthApp } from '../helpers/oauth.ts'

t.setTimeout(600_000)

t.test("GET /v1/sync with a third-party token: the feed filtered to the token's scopes", async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const ctx = { url, as: await discover(issuer) }
  const client = await registerClient(app)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)

  await alice.call('POST', '/v1/checkins', { timestamp: '2026-11-20T08:00:00Z', mood: 3 })
  await alice.call('POST', '/v1/measurements', {
    device_id: 'watch-1',
    samples: [{ type: 'heart_rate', timestamp: '2026-11-20T08:00:00Z', value: 60 }],
  })
  await alice.call('PUT', '/v1/day-feedback/2026-11-20', { mood: 4 })
  await alice.call('PATCH', '/v1/users/me', { first_name: 'Alice' })
  await bob.call('POST', '/v1/checkins', { timestamp: '2026-11-20T08:00:00Z', mood: 1 })
  const own = await alice.call('GET', '/v1/sync')
  t.same(
    own.body.changes.map((c: { type: string }) => c.type),
    ['checkin', 'measurements', 'day_feedback', 'profile'],
    'the first-party token sees the whole feed',
  )

  const agents = new Map<string, FormAgent>()
  const tokenOf = async (user: typeof alice, scope: string) => {
    const agent = agents.get(user.user.id) ?? new FormAgent(url)
    agents.set(user.user.id, agent)
    return bearer((await obtainTokens(ctx, client, user.user, scope, { agent })).tokens.access_token)
  }
  /** Alice's grants and sign-in gone: the next consent grants exactly what it asks. */
  const forgetGrants = async () => {
    await app.db.execute(sql`delete from oauth_models where account_id = ${alice.user.id}`)
    agents.delete(alice.user.id)
  }
  const sync = (headers: Record<string, string>, query = '') =>
    app.inject({ method: 'GET', url: `/v1/sync${query}`, headers })
  const typesOf = (body: { changes: Array<{ type: string }> }) => body.changes.map((c) => c.type)

  t.test('each scope sees only its types', async (t) => {
    const cases: Array<[string, string[]]> = [
      ['measurements:read', ['measurements']],
      ['journal:read', ['checkin', 'day_feedback']],
      ['profile:read', ['profile']],
      ['insights:read', []],
      ['measurements:read profile:read', ['measurements', 'profile']],
    ]
    for (const [scope, types] of cases) {
      // A fresh grant each time: a remembered grant would add up the scopes of earlier consents.
      await forgetGrants()
      const res = await sync(await tokenOf(alice, scope))
      t.equal(res.statusCode, 200, res.body)
      t.same(typesOf(res.json()), types, `${scope}: ${types.join(', ') || 'nothing'}`)
      t.equal(res.json().next_cursor, '4', 'the cursor moves past the types left out')
    }
  })

  t.test('a cursor pages through the filtered feed', async (t) => {
    await forgetGrants()
    const h = await tokenOf(alice, 'journal:read')
    const first = await sync(h, '?limit=1')
    t.match(first.json(), { changes: [{ type: 'checkin', seq: 1 }], has_more: true })
    const next = await sync(h, `?cursor=${first.json().next_cursor}`)
    t.match(next.json(), { changes: [{ type: 'day_feedback', seq: 3 }], has_more: false, next_cursor: '4' })
    const position = await app.inject({ method: 'GET', url: '/v1/sync/position', headers: h })
    t.same(position.json(), { cursor: '4' })
  })

  t.test('no scope of the feed, or types beyond the scopes: 403 insufficient_scope', async (t) => {
    await forgetGrants()
    const statsOnly = await tokenOf(alice, 'statistics:read sleep:read')
    for (const path of ['/v1/sync', '/v1/sync/position']) {
      const res = await app.inject({ method: 'GET', url: path, headers: statsOnly })
      t.equal(res.statusCode, 403, path)
      t.equal(res.json().error, 'insufficient_scope')
      t.match(res.headers['www-authenticate'], /error="insufficient_scope".*scope="measurements:read journal:read/)
    }
    await forgetGrants()
    const measurements = await tokenOf(alice, 'measurements:read')
    const asked = await sync(measurements, '?types=measurements,checkin')
    t.equal(asked.statusCode, 403)
    t.equal(asked.json().error, 'insufficient_scope')
    t.match(asked.headers['www-authenticate'], /scope="journal:read"/)
    const shares = await sync(measurements, '?types=share')
    t.equal(shares.statusCode, 403, 'share changes are never a third-party app’s')
    t.same(typesOf((await sync(measurements, '?types=measurements')).json()), ['measurements'])
  })

  t.test("BOLA: a token reads its own user's feed only, never a shared one", async (t) => {
    const bobAll = await tokenOf(bob, 'measurements:read journal:read profile:read insights:read')
    const res = await sync(bobAll)
    t.same(
      res.json().changes.map((c: { type: string; seq: number }) => [c.type, c.seq]),
      [['checkin', 1]],
      "Bob's one check-in, nothing of Alice's",
    )
    const shared = await app.inject({ method: 'GET', url: `/v1/shared/${alice.user.id}/sync`, headers: bobAll })
    t.equal(shared.statusCode, 403)
    t.equal(shared.json().error, 'insufficient_scope')
  })
})
