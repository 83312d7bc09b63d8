import t from 'tap'
import { createCheckinRepository, exportRows } from '../../routes/checkin/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('check-ins', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)

  t.test('create, get, edit, delete', async (t) => {
    const created = await alice.call('POST', '/v1/checkins', {
      timestamp: '2024-03-01T08:30:00.000Z',
      mood: 4,
      energy: 2,
      tags: ['work', 'my-own_tag'],
      note: 'tired but fine',
    })
    t.equal(created.status, 201)
    t.match(created.body, {
      id: String,
      timestamp: '2024-03-01T08:30:00.000Z',
      mood: 4,
      energy: 2,
      stress: null,
      tags: ['work', 'my-own_tag'],
      note: 'tired but fine',
      created_at: String,
      updated_at: String,
    })
    const id = created.body.id
    t.same((await alice.call('GET', `/v1/checkins/${id}`)).body, created.body)

    const edited = await alice.call('PATCH', `/v1/checkins/${id}`, { stress: 5, energy: null, note: null })
    t.equal(edited.status, 200)
    t.match(edited.body, { id, mood: 4, energy: null, stress: 5, note: null, tags: ['work', 'my-own_tag'] })

    t.same(await alice.call('DELETE', `/v1/checkins/${id}`), { status: 200, body: { status: 'success' } })
    t.match(await alice.call('GET', `/v1/checkins/${id}`), { status: 404, body: { error: 'not_found' } })
    t.match(await alice.call('DELETE', `/v1/checkins/${id}`), { status: 404, body: { error: 'not_found' } })
  })

  t.test('timestamp defaults to now', async (t) => {
    const before = Date.now()
    const res = await alice.call('POST', '/v1/checkins', { mood: 3 })
    t.equal(res.status, 201)
    t.ok(Date.parse(res.body.timestamp) >= before - 1000)
    t.same(res.body.tags, [])
    await alice.call('DELETE', `/v1/checkins/${res.body.id}`)
  })

  t.test('bad input answers 400 validation_failed with the field', async (t) => {
    const cases: Array<[unknown, string]> = [
      [{ mood: 6 }, 'mood'],
      [{ mood: 0 }, 'mood'],
      [{ mood: 3, energy: 9 }, 'energy'],
      [{ mood: 3, stress: -1 }, 'stress'],
      [{ mood: 2.5 }, 'mood'],
      [{}, 'mood'],
      [{ mood: 3, note: 'x'.repeat(2001) }, 'note'],
      [{ mood: 3, tags: ['Work'] }, 'tags[0]'],
      [{ mood: 3, tags: ['a', 'a'] }, 'tags'],
      [{ mood: 3, tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }, 'tags'],
      [{ mood: 3, tags: ['x'.repeat(33)] }, 'tags[0]'],
      [{ mood: 3, colour: 'blue' }, 'colour'],
      [{ mood: 3, timestamp: 'yesterday' }, 'timestamp'],
      [{ mood: 3, timestamp: new Date(Date.now() + 3600_000).toISOString() }, 'timestamp'],
    ]
    for (const [payload, field] of cases) {
      const res = await alice.call('POST', '/v1/checkins', payload)
      t.equal(res.status, 400, JSON.stringify(payload).slice(0, 80))
      t.equal(res.body.error, 'validation_failed')
      t.ok(
        res.body.details.some((d: { field: string }) => d.field === field),
        `${field} named in ${JSON.stringify(res.body.details)}`,
      )
    }
    const { body } = await alice.call('POST', '/v1/checkins', { mood: 3 })
    t.match(await alice.call('PATCH', `/v1/checkins/${body.id}`, { mood: null }), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'mood' }] },
    })
    t.match(await alice.call('PATCH', `/v1/checkins/${body.id}`, { stress: 6 }), {
      status: 400,
      body: { details: [{ field: 'stress' }] },
    })
    t.match(await alice.call('GET', '/v1/checkins/not-a-uuid'), { status: 400, body: { error: 'validation_failed' } })
    await alice.call('DELETE', `/v1/checkins/${body.id}`)
  })

  t.test('list by range, paginated without gaps or repeats', async (t) => {
    const carol = await userWithToken(app)
    const times = Array.from({ length: 7 }, (_, i) => new Date(Date.UTC(2024, 4, 1 + i, 12)).toISOString())
    // Two check-ins at the same instant: the keyset must still separate them.
    times.push(times[3])
    const ids: string[] = []
    for (const ts of times) ids.push((await carol.call('POST', '/v1/checkins', { timestamp: ts, mood: 3 })).body.id)

    const seen: string[] = []
    let cursor: string | null = null
    do {
      const q: string = cursor ? `&cursor=${cursor}` : ''
      const res = await carol.call('GET', `/v1/checkins?limit=3${q}`)
      t.equal(res.status, 200)
      t.ok(res.body.data.length <= 3)
      seen.push(...res.body.data.map((c: { id: string }) => c.id))
      cursor = res.body.next_cursor
    } while (cursor)
    t.equal(seen.length, 8)
    t.same(new Set(seen), new Set(ids))
    const all = (await carol.call('GET', '/v1/checkins')).body.data
    t.same(
      all.map((c: { timestamp: string }) => c.timestamp),
      [...times].sort().reverse(),
      'newest first',
    )

    const ranged = await carol.call('GET', `/v1/checkins?from=${times[2]}&to=${times[5]}`)
    t.same(
      ranged.body.data.map((c: { timestamp: string }) => c.timestamp),
      [times[4], times[3], times[3], times[2]],
      'from inclusive, to exclusive',
    )
    t.match(await carol.call('GET', `/v1/checkins?from=${times[5]}&to=${times[2]}`), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'query.to' }] },
    })
    t.match(await carol.call('GET', '/v1/checkins?cursor=garbage'), {
      status: 400,
      body: { details: [{ field: 'query.cursor' }] },
    })
    t.same((await bob.call('GET', '/v1/checkins')).body, { data: [], next_cursor: null }, 'bob sees none of them')

    const rows = []
    for await (const row of exportRows(app.db, carol.user.id)) rows.push(row)
    t.equal(rows.length, 8)
    t.match(rows[0], { id: String, timestamp: times[0], mood: 3, tags: [] })
  })

  t.test("another user's ids answer 404 like missing ones", async (t) => {
    const { body } = await alice.call('POST', '/v1/checkins', { mood: 2, note: 'private' })
    const missing = '00000000-0000-4000-8000-000000000000'
    for (const id of [body.id, missing]) {
      t.same(await bob.call('GET', `/v1/checkins/${id}`), {
        status: 404,
        body: { error: 'not_found', message: 'No such check-in.' },
      })
      t.same((await bob.call('PATCH', `/v1/checkins/${id}`, { mood: 1 })).status, 404)
      t.same((await bob.call('DELETE', `/v1/checkins/${id}`)).status, 404)
    }
    t.match((await alice.call('GET', `/v1/checkins/${body.id}`)).body, { mood: 2, note: 'private' }, 'untouched')
    t.equal((await app.inject({ method: 'GET', url: '/v1/checkins' })).statusCode, 401)
  })

  t.test('dailyMood groups by calendar day of the given zone', async (t) => {
    const dave = await userWithToken(app, { timeZone: 'America/New_York' })
    // 2024-06-02T02:00Z is still June 1st in New York (UTC-4).
    await dave.call('POST', '/v1/checkins', { timestamp: '2024-06-01T15:00:00Z', mood: 2 })
    await dave.call('POST', '/v1/checkins', { timestamp: '2024-06-02T02:00:00Z', mood: 5 })
    await dave.call('POST', '/v1/checkins', { timestamp: '2024-06-02T14:00:00Z', mood: 4 })
    await dave.call('POST', '/v1/checkins', { timestamp: '2024-06-10T14:00:00Z', mood: 1 })
    const repo = createCheckinRepository(app.db)
    t.same(await repo.dailyMood(dave.user.id, '2024-06-01', '2024-06-02', 'America/New_York'), [
      { date: '2024-06-01', mood_avg: 3.5, checkin_count: 2 },
      { date: '2024-06-02', mood_avg: 4, checkin_count: 1 },
    ])
    t.same(await repo.dailyMood(dave.user.id, '2024-06-02', '2024-06-02', 'UTC'), [
      { date: '2024-06-02', mood_avg: 4.5, checkin_count: 2 },
    ])
  })
})
