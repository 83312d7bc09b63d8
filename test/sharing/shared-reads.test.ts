import { count, eq } from 'drizzle-orm'
import t from 'tap'
import { insights } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, userWithToken } from '../helpers/fixtures.ts'
import { ingest, series } from '../helpers/measurement.ts'

// Read-only access to a shared owner's data (issue 7): every read route of every scope answers the
// viewer what it answers the owner, after the share and scope check; nothing else is reachable.

const SCOPES = ['measurement', 'statistics', 'checkin', 'day-feedback', 'activity', 'intention', 'insight'] as const
type Scope = (typeof SCOPES)[number]

const HOUR = 3_600_000

/** Data in every scope; `offset` makes a second user's values differ, so a leak of the caller's own data shows. */
async function seed(app: Awaited<ReturnType<typeof buildTestApp>>, who: UserWithToken, offset: number) {
  await ingest(app, who.headers, [
    ...series('heart_rate', '2025-01-06T08:00:00Z', 30, (i) => 60 + offset + (i % 7), 15 * 60_000),
    ...series('steps', '2025-01-07T09:00:00Z', 20, (i) => 100 + offset + i, 10 * 60_000),
    // A night of sleep stages (light, deep, REM), the last sample awake.
    ...series(
      'sleep_stage',
      '2025-01-07T03:00:00Z',
      60 + offset,
      (i) => (i === 59 + offset ? 0 : 1 + (i % 3)),
      5 * 60_000,
    ),
  ])
  const checkins: string[] = []
  // Three consecutive days ending now: the journaling-streak rule has something to say.
  for (let i = 0; i < 5; i++) {
    const res = await who.call('POST', '/v1/checkins', {
      timestamp: new Date(Date.now() - (1 + i * 12) * HOUR).toISOString(),
      mood: 1 + ((i + offset) % 5),
      note: `note ${i} of ${offset}`,
      tags: ['work'],
    })
    checkins.push(res.body.id)
  }
  for (const date of ['2025-01-06', '2025-01-07', '2025-01-08']) {
    await who.call('PUT', `/v1/day-feedback/${date}`, { mood: 2 + (offset % 3), rating: 4, note: `day ${date}` })
  }
  const activities: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await who.call('POST', '/v1/activities', {
      kind: 'walk',
      started_at: `2025-01-0${6 + i}T10:00:00Z`,
      ended_at: `2025-01-0${6 + i}T10:45:00Z`,
      notes: `walk ${i} of ${offset}`,
      perceived_exertion: 3,
    })
    activities.push(res.body.id)
  }
  const intention = await who.call('POST', '/v1/intentions', {
    kind: 'focus',
    started_at: '2025-01-07T08:00:00Z',
    ended_at: '2025-01-07T09:00:00Z',
    outcome_rating: 4,
    outcome_note: `went well ${offset}`,
  })
  return { checkins, activities, intention: intention.body.id as string }
}

t.test('shared reads: invite → accept → read every scope → change scopes → revoke', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app, { timeZone: 'America/New_York' })
  const viewer = await userWithToken(app, { timeZone: 'Asia/Tokyo' })
  const stranger = await userWithToken(app)
  const other = await userWithToken(app)
  const ids = await seed(app, owner, 0)
  await seed(app, viewer, 1)
  const otherIds = await seed(app, other, 2)
  const insightCount = async (userId: string) =>
    (await app.db.select({ n: count() }).from(insights).where(eq(insights.userId, userId)))[0].n

  /** Every read route of the shared prefix, by scope, as a path after `/v1`. */
  const routes = (): Array<[Scope, string]> => [
    ['measurement', '/measurements?type=heart_rate&from=2025-01-06T00:00:00Z&to=2025-01-07T00:00:00Z'],
    [
      'measurement',
      '/measurements/aggregate?type=heart_rate&from=2025-01-05T00:00:00Z&to=2025-01-09T00:00:00Z&bucket=1d',
    ],
    ['measurement', '/sleep?from=2025-01-05&to=2025-01-09'],
    ['measurement', '/sleep/daily?from=2025-01-05&to=2025-01-09'],
    ['statistics', '/statistics/daily?from=2025-01-05&to=2025-01-09'],
    ['statistics', '/statistics/summary?period=week&date=2025-01-08'],
    ['checkin', '/checkins'],
    ['checkin', `/checkins/${ids.checkins[0]}`],
    ['day-feedback', '/day-feedback'],
    ['day-feedback', '/day-feedback/2025-01-07'],
    ['activity', '/activities'],
    ['activity', `/activities/${ids.activities[1]}`],
    ['intention', '/intentions'],
    ['intention', `/intentions/${ids.intention}`],
    ['insight', '/insights'],
    ['insight', `/insights/${insightId}`],
  ]
  const shared = (ownerId: string, path: string) => `/v1/shared/${ownerId}${path}`
  let insightId = '00000000-0000-4000-8000-000000000000'

  /** The status and error of each route for `who` reading `ownerId`'s data. */
  async function statuses(who: UserWithToken, ownerId: string) {
    const out: Record<string, string> = {}
    for (const [, path] of routes()) {
      const res = await who.call('GET', shared(ownerId, path))
      out[path] = `${res.status} ${res.status === 200 ? '' : res.body.error}`.trim()
    }
    return out
  }
  const all = (value: string) => Object.fromEntries(routes().map(([, p]) => [p, value]))
  const byScope = (f: (s: Scope) => string) => Object.fromEntries(routes().map(([s, p]) => [p, f(s)]))

  t.test('before any share neither the future viewer nor a stranger sees anything', async (t) => {
    t.same(await statuses(viewer, owner.user.id), all('404 not_found'))
    t.same(await statuses(stranger, owner.user.id), all('404 not_found'))
    const missing = await viewer.call('GET', shared(owner.user.id, '/checkins'))
    t.same(missing.body, { error: 'not_found', message: 'Nothing is shared with you by this user.' })
  })

  let shareId = ''
  t.test('the owner invites with every scope and the viewer accepts', async (t) => {
    const invite = await owner.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: SCOPES })
    t.equal(invite.status, 201)
    shareId = invite.body.id
    const accept = await viewer.call('POST', `/v1/shared/invites/${shareId}/accept`)
    t.match(accept.body, { status: 'active', owner: { id: owner.user.id } })
  })

  t.test('a viewer reading insights does not run the rules on the owner’s data', async (t) => {
    t.equal(await insightCount(owner.user.id), 0)
    const res = await viewer.call('GET', shared(owner.user.id, '/insights'))
    t.same(res.body, { data: [], next_cursor: null })
    t.equal(await insightCount(owner.user.id), 0, 'nothing written for the owner')
    const own = await owner.call('GET', '/v1/insights')
    t.match(own.body.data, [{ kind: 'journaling_streak' }], 'the owner’s own read runs them')
    insightId = own.body.data[0].id
    const feedback = await owner.call('PUT', `/v1/insights/${insightId}/feedback`, {
      helpful: false,
      comment: 'private to me',
    })
    t.equal(feedback.status, 200)
  })

  t.test('the viewer gets, on every route, what the owner gets', async (t) => {
    for (const [scope, path] of routes()) {
      const mine = await owner.call('GET', `/v1${path}`)
      const theirs = await viewer.call('GET', shared(owner.user.id, path))
      t.equal(mine.status, 200, `${path} for the owner`)
      t.equal(theirs.status, 200, `${path} for the viewer`)
      if (scope === 'insight') {
        // The owner's feedback is the owner's note about the insight: not shown to viewers.
        const strip = ({ feedback, ...rest }: { feedback: unknown }) => rest
        const expected = Array.isArray(mine.body.data)
          ? { ...mine.body, data: mine.body.data.map(strip) }
          : strip(mine.body)
        t.same(theirs.body, expected, path)
        const one = Array.isArray(theirs.body.data) ? theirs.body.data[0] : theirs.body
        t.notOk('feedback' in one, `${path}: no feedback field`)
        t.match(Array.isArray(mine.body.data) ? mine.body.data[0] : mine.body, {
          feedback: { comment: 'private to me' },
        })
      } else {
        t.same(theirs.body, mine.body, path)
      }
      const viewersOwn = await viewer.call('GET', `/v1${path}`)
      if (!path.includes('/insights'))
        t.not(JSON.stringify(viewersOwn.body), JSON.stringify(mine.body), `${path} differs from the viewer’s own data`)
    }
  })

  t.test('days and buckets follow the owner’s time zone, not the viewer’s', async (t) => {
    const daily = await viewer.call('GET', shared(owner.user.id, '/statistics/daily?from=2025-01-05&to=2025-01-09'))
    t.equal(daily.body.time_zone, 'America/New_York')
    const summary = await viewer.call('GET', shared(owner.user.id, '/statistics/summary?period=week&date=2025-01-08'))
    t.equal(summary.body.time_zone, 'America/New_York')
    const agg = await viewer.call(
      'GET',
      shared(
        owner.user.id,
        '/measurements/aggregate?type=heart_rate&from=2025-01-05T00:00:00Z&to=2025-01-09T00:00:00Z&bucket=1d',
      ),
    )
    t.equal(agg.body.time_zone, 'America/New_York')
    t.equal(agg.body.data[0].start, '2025-01-06T05:00:00.000Z', 'a New York day starts at 05:00 UTC in winter')
  })

  t.test('a stranger still sees nothing; the owner reads their own data through the prefix too', async (t) => {
    t.same(await statuses(stranger, owner.user.id), all('404 not_found'))
    t.same(await statuses(owner, owner.user.id), all('200'))
  })

  t.test('a viewer of one owner cannot reach another user’s data through the path', async (t) => {
    t.same(await statuses(viewer, other.user.id), all('404 not_found'), 'the other user shares nothing')
    const ownIdOwnData = Object.fromEntries(
      routes().map(([, p]) => [p, /\/[0-9a-f-]{36}$/.test(p) ? '404 not_found' : '200']),
    )
    t.same(
      await statuses(viewer, viewer.user.id),
      ownIdOwnData,
      'own id: own data, where the owner’s ids are not found',
    )
    // With a share from the other user, the owner's ids are still not found under the other's path.
    const invite = await other.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] })
    await viewer.call('POST', `/v1/shared/invites/${invite.body.id}/accept`)
    const crossed = await viewer.call('GET', shared(other.user.id, `/checkins/${ids.checkins[0]}`))
    t.same(crossed.body, { error: 'not_found', message: 'No such check-in.' })
    const crossedBack = await viewer.call('GET', shared(owner.user.id, `/checkins/${otherIds.checkins[0]}`))
    t.equal(crossedBack.status, 404)
    const outOfScope = await viewer.call('GET', shared(other.user.id, `/activities/${otherIds.activities[0]}`))
    t.same(outOfScope.body, { error: 'forbidden', message: 'This share does not include activity.' })
    const list = await viewer.call('GET', shared(other.user.id, '/checkins'))
    t.same(
      list.body.data.map((c: { id: string }) => c.id),
      otherIds.checkins,
      'the other user’s check-ins, newest first',
    )
  })

  t.test('lists of a shared owner paginate with cursors, without gaps or repeats', async (t) => {
    const walk = async (path: string, limit: number) => {
      const seen: unknown[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const sep = path.includes('?') ? '&' : '?'
        const res = await viewer.call(
          'GET',
          shared(owner.user.id, `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
        )
        t.equal(res.status, 200)
        t.ok(res.body.data.length <= limit)
        seen.push(...res.body.data)
        cursor = res.body.next_cursor
        pages++
      } while (cursor && pages < 100)
      return seen
    }
    t.same(
      (await walk('/checkins', 2)).map((c) => (c as { id: string }).id),
      ids.checkins,
    )
    t.same(
      (await walk('/activities', 2)).map((c) => (c as { id: string }).id),
      [...ids.activities].reverse(),
    )
    t.same(
      (await walk('/day-feedback', 2)).map((d) => (d as { date: string }).date),
      ['2025-01-08', '2025-01-07', '2025-01-06'],
    )
    const samples = await walk('/measurements?type=heart_rate&from=2025-01-06T00:00:00Z&to=2025-01-07T00:00:00Z', 7)
    const all = await owner.call(
      'GET',
      '/v1/measurements?type=heart_rate&from=2025-01-06T00:00:00Z&to=2025-01-07T00:00:00Z',
    )
    t.equal(samples.length, 30)
    t.same(samples, all.body.data)
  })

  t.test('nothing can be written under the shared prefix', async (t) => {
    const o = owner.user.id
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/measurements', { samples: series('heart_rate', '2025-01-06T00:00:00Z', 1, () => 70) }],
      ['DELETE', '/measurements?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z', undefined],
      ['POST', '/checkins', { mood: 1 }],
      ['PATCH', `/checkins/${ids.checkins[0]}`, { mood: 1 }],
      ['DELETE', `/checkins/${ids.checkins[0]}`, undefined],
      ['PUT', '/day-feedback/2025-01-07', { mood: 1 }],
      ['DELETE', '/day-feedback/2025-01-07', undefined],
      ['POST', '/activities', { kind: 'run' }],
      ['POST', `/activities/${ids.activities[0]}/end`, {}],
      ['PATCH', `/activities/${ids.activities[0]}`, { notes: 'x' }],
      ['DELETE', `/activities/${ids.activities[0]}`, undefined],
      ['POST', '/intentions', { kind: 'focus' }],
      ['DELETE', `/intentions/${ids.intention}`, undefined],
      ['PUT', `/insights/${insightId}/feedback`, { helpful: true }],
      ['DELETE', `/insights/${insightId}/feedback`, undefined],
      ['POST', `/insights/${insightId}/reflections`, { text: 'mine now' }],
    ]
    const before = await Promise.all(routes().map(([, p]) => owner.call('GET', `/v1${p}`)))
    for (const [method, path, body] of writes) {
      const res = await viewer.call(method as 'POST', shared(o, path), body)
      t.equal(res.status, 404, `${method} ${path}`)
      t.equal(res.body.error, 'not_found')
    }
    // The owner's notes on insights and the catalogue are not shared routes either.
    t.equal((await viewer.call('GET', shared(o, `/insights/${insightId}/reflections`))).status, 404)
    t.equal((await viewer.call('GET', shared(o, '/measurements/types'))).status, 404)
    const after = await Promise.all(routes().map(([, p]) => owner.call('GET', `/v1${p}`)))
    t.same(after, before, 'the owner’s data is unchanged')
  })

  t.test('bad owner ids are 400, not a lookup', async (t) => {
    const res = await viewer.call('GET', '/v1/shared/not-a-uuid/checkins')
    t.equal(res.status, 400)
    t.match(res.body, { error: 'validation_failed', details: [{ field: 'params.owner_id' }] })
  })

  t.test('scopes changed: the removed ones answer 403 at once', async (t) => {
    const patch = await owner.call('PATCH', `/v1/sharing/${shareId}`, { scopes: ['checkin', 'insight'] })
    t.equal(patch.status, 200)
    const expected = byScope((s) => (s === 'checkin' || s === 'insight' ? '200' : '403 forbidden'))
    t.same(await statuses(viewer, owner.user.id), expected)
    const res = await viewer.call('GET', shared(owner.user.id, '/statistics/daily?from=2025-01-05&to=2025-01-09'))
    t.same(res.body, { error: 'forbidden', message: 'This share does not include statistics.' })
  })

  t.test('revoked: every route answers 404', async (t) => {
    t.same((await owner.call('DELETE', `/v1/sharing/${shareId}`)).body, { status: 'success' })
    t.same(await statuses(viewer, owner.user.id), all('404 not_found'))
  })

  t.test('a peer-group member reads every scope', async (t) => {
    const peer = await userWithToken(app)
    const invite = await owner.call('POST', `/v1/user/${owner.user.id}/group/invite`, { email: peer.user.email })
    const [group] = invite.body
    const ok = await peer.call('POST', `/v1/user/${peer.user.id}/group/${group.id}/accept`)
    t.equal(ok.status, 200)
    t.same(await statuses(peer, owner.user.id), all('200'))
    const mine = await owner.call('GET', '/v1/checkins')
    t.same((await peer.call('GET', shared(owner.user.id, '/checkins'))).body, mine.body)
    t.same(await statuses(viewer, owner.user.id), all('404 not_found'), 'the group opens nothing to others')
    const left = await peer.call('DELETE', `/v1/user/${peer.user.id}/group/${group.id}/member/${peer.user.id}`)
    t.equal(left.status, 200)
    t.same(await statuses(peer, owner.user.id), all('404 not_found'), 'leaving the group ends access')
  })
})
