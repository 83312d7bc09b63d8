import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('updated_since on the journal lists: only what was created or changed since', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const old = await alice.call('POST', '/v1/checkins', { timestamp: '2026-11-01T08:00:00Z', mood: 2 })
  const edited = await alice.call('POST', '/v1/checkins', { timestamp: '2026-11-02T08:00:00Z', mood: 3 })
  await alice.call('PUT', '/v1/day-feedback/2026-11-01', { mood: 3 })
  await alice.call('PUT', '/v1/day-feedback/2026-11-02', { mood: 3 })
  const walk = await alice.call('POST', '/v1/activities', {
    kind: 'walk',
    started_at: '2026-11-01T09:00:00Z',
    ended_at: '2026-11-01T09:30:00Z',
  })
  const intention = await alice.call('POST', '/v1/intentions', {
    kind: 'focus',
    started_at: '2026-11-01T09:00:00Z',
    ended_at: '2026-11-01T09:30:00Z',
  })
  t.equal(walk.status, 201)
  t.equal(intention.status, 201, JSON.stringify(intention.body))
  // Everything so far was changed "a day ago".
  for (const table of ['checkins', 'day_feedback', 'journal_sessions']) {
    await app.db.execute(
      sql`update ${sql.identifier(table)} set updated_at = now() - interval '1 day' where user_id = ${alice.user.id}`,
    )
  }
  const since = new Date(Date.now() - 3600_000).toISOString()
  await alice.call('PATCH', `/v1/checkins/${edited.body.id}`, { mood: 5 })
  const fresh = await alice.call('POST', '/v1/checkins', { timestamp: '2026-11-03T08:00:00Z', mood: 4 })
  await alice.call('PUT', '/v1/day-feedback/2026-11-02', { mood: 5 })
  await alice.call('PATCH', `/v1/activities/${walk.body.id}`, { notes: 'windy' })

  const checkins = await alice.call('GET', `/v1/checkins?updated_since=${since}`)
  t.same(
    checkins.body.data.map((c: { id: string }) => c.id),
    [fresh.body.id, edited.body.id],
  )
  t.notOk(
    checkins.body.data.some((c: { id: string }) => c.id === old.body.id),
    'the unchanged one is left out',
  )
  const days = await alice.call('GET', `/v1/day-feedback?updated_since=${since}`)
  t.same(
    days.body.data.map((d: { date: string }) => d.date),
    ['2026-11-02'],
  )
  const activities = await alice.call('GET', `/v1/activities?updated_since=${since}`)
  t.same(
    activities.body.data.map((a: { id: string }) => a.id),
    [walk.body.id],
  )
  const intentions = await alice.call('GET', `/v1/intentions?updated_since=${since}`)
  t.same(intentions.body.data, [])
  const insights = await alice.call('GET', `/v1/insights?updated_since=${since}`)
  t.equal(insights.status, 200)
  const bad = await alice.call('GET', '/v1/checkins?updated_since=yesterday')
  t.match(bad, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.updated_since' }] } })

  t.test('a viewer gets the same filter on shared lists', async (t) => {
    const viewer = await userWithToken(app)
    const invite = await alice.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] })
    await viewer.call('POST', `/v1/shared/invites/${invite.body.id}/accept`)
    const shared = await viewer.call('GET', `/v1/shared/${alice.user.id}/checkins?updated_since=${since}`)
    t.same(
      shared.body.data.map((c: { id: string }) => c.id),
      [fresh.body.id, edited.body.id],
    )
  })
})
