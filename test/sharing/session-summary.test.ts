import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test("an activity's measurement summary reaches a viewer only with the measurement scope", async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app)
  const viewer = await userWithToken(app)
  const startedAt = new Date(Date.now() - 3600_000)
  const samples = Array.from({ length: 30 }, (_, i) => ({
    type: 'heart_rate',
    timestamp: new Date(startedAt.getTime() + (i + 1) * 60_000).toISOString(),
    value: 100 + i,
  }))
  await app.inject({ method: 'POST', url: '/v1/measurements', headers: owner.headers, payload: { samples } })
  const activity = await app.inject({
    method: 'POST',
    url: '/v1/activities',
    headers: owner.headers,
    payload: {
      kind: 'run',
      started_at: startedAt.toISOString(),
      ended_at: new Date(startedAt.getTime() + 45 * 60_000).toISOString(),
    },
  })
  t.equal(activity.statusCode, 201, activity.body)
  const id = activity.json().id
  const own = (await app.inject({ method: 'GET', url: `/v1/activities/${id}`, headers: owner.headers })).json()
  t.match(own.summary, { heart_rate: { count: 30, min: 100, max: 129 } })

  const invite = await app.inject({
    method: 'POST',
    url: '/v1/sharing/invites',
    headers: owner.headers,
    payload: { email: viewer.user.email, scopes: ['activity'] },
  })
  await app.inject({ method: 'POST', url: `/v1/shared/invites/${invite.json().id}/accept`, headers: viewer.headers })
  const url = `/v1/shared/${owner.user.id}/activities/${id}`
  const without = await app.inject({ method: 'GET', url, headers: viewer.headers })
  t.equal(without.statusCode, 200)
  t.same(without.json(), { ...own, summary: null }, 'the activity, without its measurements')

  await app.inject({
    method: 'PATCH',
    url: `/v1/sharing/${invite.json().id}`,
    headers: owner.headers,
    payload: { scopes: ['activity', 'measurement'] },
  })
  const withScope = await app.inject({ method: 'GET', url, headers: viewer.headers })
  t.same(withScope.json(), own, 'with the measurement scope, the same answer the owner gets')
})
