import { sql } from 'drizzle-orm'
import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('GET /v1/sync: every change, in order, deletions as tombstones', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)

  const empty = await alice.call('GET', '/v1/sync')
  t.same(empty, { status: 200, body: { changes: [], next_cursor: '0', has_more: false } }, 'nothing yet: cursor 0')

  const checkin = await alice.call('POST', '/v1/checkins', { timestamp: '2026-11-20T08:00:00Z', mood: 3 })
  await alice.call('PATCH', `/v1/checkins/${checkin.body.id}`, { mood: 4 })
  const upload = await alice.call('POST', '/v1/measurements', {
    device_id: 'watch-1',
    samples: [
      { type: 'heart_rate', timestamp: '2026-11-20T08:00:00Z', value: 60 },
      { type: 'heart_rate', timestamp: '2026-11-20T08:05:00Z', value: 62 },
      { type: 'steps', timestamp: '2026-11-20T08:01:00Z', value: 100 },
    ],
  })
  t.same(upload.body, { accepted: 3, duplicates: 0 })
  const resent = await alice.call('POST', '/v1/measurements', {
    device_id: 'watch-1',
    samples: [{ type: 'steps', timestamp: '2026-11-20T08:01:00Z', value: 100 }],
  })
  t.same(resent.body, { accepted: 0, duplicates: 1 }, 'a batch of duplicates changes nothing, logs nothing')
  await alice.call('PUT', '/v1/day-feedback/2026-11-20', { mood: 4 })
  await alice.call('PUT', '/v1/day-feedback/2026-11-20', { mood: 5 })
  const activity = await alice.call('POST', '/v1/activities', {
    kind: 'walk',
    started_at: '2026-11-20T09:00:00Z',
    ended_at: '2026-11-20T09:30:00Z',
  })
  t.equal(activity.status, 201)
  await alice.call('PATCH', '/v1/users/me', { first_name: 'Alice' })
  await alice.call('DELETE', `/v1/checkins/${checkin.body.id}`)
  await alice.call('DELETE', '/v1/measurements?type=heart_rate&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z')
  await alice.call('DELETE', `/v1/activities/${activity.body.id}`)
  await alice.call('DELETE', '/v1/day-feedback/2026-11-20')

  const all = await alice.call('GET', '/v1/sync')
  t.equal(all.status, 200)
  const changes = all.body.changes
  t.same(
    changes.map((c: { seq: number }) => c.seq),
    changes.map((_: unknown, i: number) => i + 1),
    'seq 1, 2, 3 … without gaps',
  )
  t.match(changes, [
    { type: 'checkin', action: 'created', id: checkin.body.id },
    { type: 'checkin', action: 'updated', id: checkin.body.id },
    {
      type: 'measurements',
      action: 'created',
      range: { type: 'heart_rate', from: '2026-11-20T08:00:00.000Z', to: '2026-11-20T08:05:00.000Z', count: 2 },
    },
    {
      type: 'measurements',
      action: 'created',
      range: { type: 'steps', from: '2026-11-20T08:01:00.000Z', to: '2026-11-20T08:01:00.000Z', count: 1 },
    },
    { type: 'day_feedback', action: 'created', id: '2026-11-20' },
    { type: 'day_feedback', action: 'updated', id: '2026-11-20' },
    { type: 'activity', action: 'created', id: activity.body.id },
    { type: 'profile', action: 'updated', id: alice.user.id },
    { type: 'checkin', action: 'deleted', id: checkin.body.id },
    {
      type: 'measurements',
      action: 'deleted',
      range: { type: 'heart_rate', from: '2026-11-20T00:00:00.000Z', to: '2026-11-21T00:00:00.000Z', count: 2 },
    },
    { type: 'activity', action: 'deleted', id: activity.body.id },
    { type: 'day_feedback', action: 'deleted', id: '2026-11-20' },
  ])
  t.equal(changes.length, 12)
  for (const c of changes) {
    t.ok(Date.parse(c.at) > 0, 'each change has its time')
    t.notOk('value' in c || 'mood' in c, 'no data in the feed, only what changed')
  }
  t.equal(all.body.next_cursor, '12')
  t.equal(all.body.has_more, false)

  t.test('pages with limit; the next cursor resumes exactly after the last change', async (t) => {
    const seen: number[] = []
    let cursor: string | undefined
    for (let i = 0; i < 10; i++) {
      const page = await alice.call('GET', `/v1/sync?limit=5${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...page.body.changes.map((c: { seq: number }) => c.seq))
      cursor = page.body.next_cursor
      if (!page.body.has_more) break
    }
    t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    t.same((await alice.call('GET', `/v1/sync?cursor=${cursor}`)).body, {
      changes: [],
      next_cursor: '12',
      has_more: false,
    })
    await alice.call('POST', '/v1/checkins', { mood: 2 })
    const later = await alice.call('GET', `/v1/sync?cursor=${cursor}`)
    t.match(later.body, { changes: [{ seq: 13, type: 'checkin', action: 'created' }], next_cursor: '13' })
  })

  t.test('types narrows the feed; the cursor still moves past what it left out', async (t) => {
    const res = await alice.call('GET', '/v1/sync?types=day_feedback,profile')
    t.same(
      res.body.changes.map((c: { type: string; action: string }) => `${c.type}.${c.action}`),
      ['day_feedback.created', 'day_feedback.updated', 'profile.updated', 'day_feedback.deleted'],
    )
    t.equal(res.body.next_cursor, '13')
    const bad = await alice.call('GET', '/v1/sync?types=checkin,heartbeats')
    t.match(bad, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.types' }] } })
  })

  t.test('bad cursors', async (t) => {
    for (const cursor of ['abc', '-1', '1.5', '9999999999999999']) {
      const res = await alice.call('GET', `/v1/sync?cursor=${cursor}`)
      t.match(res, { status: 400, body: { error: 'validation_failed' } }, cursor)
    }
    const beyond = await alice.call('GET', '/v1/sync?cursor=14')
    t.match(beyond, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.cursor' }] } })
  })

  t.test('cross-user: each user has their own feed; a cursor of another user reads nothing of theirs', async (t) => {
    const res = await bob.call('GET', '/v1/sync')
    t.same(res.body, { changes: [], next_cursor: '0', has_more: false })
    t.match(await bob.call('GET', '/v1/sync?cursor=5'), { status: 400, body: { error: 'validation_failed' } })
    t.match(await bob.call('GET', `/v1/shared/${alice.user.id}/sync`), { status: 404, body: { error: 'not_found' } })
    t.same((await alice.call('GET', '/v1/sync/position')).body, { cursor: '13' })
    t.same((await bob.call('GET', '/v1/sync/position')).body, { cursor: '0' })
  })

  t.test('past the retention a cursor answers 410 cursor_expired', async (t) => {
    await app.db.execute(
      sql`update change_log set at = now() - interval '40 days' where user_id = ${alice.user.id} and seq <= 4`,
    )
    t.equal(await app.changes.prune(30), 4)
    const old = await alice.call('GET', '/v1/sync?cursor=2')
    t.match(old, { status: 410, body: { error: 'cursor_expired', message: /full resync/ } })
    const edge = await alice.call('GET', '/v1/sync?cursor=4')
    t.equal(edge.body.changes[0].seq, 5, 'a cursor at the pruned edge still works')
    const fresh = await alice.call('GET', '/v1/sync')
    t.equal(fresh.body.changes[0].seq, 5, 'no cursor: from the oldest change kept')
  })

  t.test('an account deleted takes its change log with it', async (t) => {
    const carol = await userWithToken(app)
    await carol.call('POST', '/v1/checkins', { mood: 3 })
    await app.db.execute(sql`delete from users where id = ${carol.user.id}`)
    const [row] = (
      (await app.db.execute(
        sql`select (select count(*) from change_log where user_id = ${carol.user.id})::int as n`,
      )) as unknown as { rows: Array<{ n: number }> }
    ).rows
    t.equal(row.n, 0)
  })
})

t.test('a viewer reads the feed of the scopes shared, nothing else', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app)
  const viewer = await userWithToken(app)
  const invite = await owner.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] })
  t.equal(invite.status, 201)
  await viewer.call('POST', `/v1/shared/invites/${invite.body.id}/accept`)
  await owner.call('POST', '/v1/checkins', { mood: 3 })
  await owner.call('PUT', '/v1/day-feedback/2026-11-20', { mood: 4 })
  await owner.call('PATCH', '/v1/users/me', { first_name: 'Olga' })

  const own = await owner.call('GET', '/v1/sync')
  t.same(
    own.body.changes.map((c: { type: string; action: string }) => `${c.type}.${c.action}`),
    ['share.created', 'share.updated', 'checkin.created', 'day_feedback.created', 'profile.updated'],
    'the owner sees the share and its acceptance too',
  )
  const shared = await viewer.call('GET', `/v1/shared/${owner.user.id}/sync`)
  t.equal(shared.status, 200)
  t.same(
    shared.body.changes.map((c: { type: string }) => c.type),
    ['checkin'],
  )
  t.equal(shared.body.next_cursor, '5')
  const asked = await viewer.call('GET', `/v1/shared/${owner.user.id}/sync?types=checkin,day_feedback`)
  t.match(asked, { status: 403, body: { error: 'forbidden' } })

  await owner.call('PATCH', `/v1/sharing/${invite.body.id}`, { scopes: ['statistics'] })
  const none = await viewer.call('GET', `/v1/shared/${owner.user.id}/sync`)
  t.match(none, { status: 403, body: { error: 'forbidden' } }, 'a share without a feed scope reads no feed')
  await owner.call('DELETE', `/v1/sharing/${invite.body.id}`)
  t.match(await viewer.call('GET', `/v1/shared/${owner.user.id}/sync`), { status: 404 })
  const tail = await owner.call('GET', '/v1/sync?cursor=5')
  t.same(
    tail.body.changes.map((c: { type: string; action: string }) => `${c.type}.${c.action}`),
    ['share.updated', 'share.deleted'],
  )
})
