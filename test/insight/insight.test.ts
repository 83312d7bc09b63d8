import t from 'tap'
import { createInsightEngine } from '../../routes/insight/engine.ts'
import { exportRows } from '../../routes/insight/repository.ts'
import { currentStreak, weekStart } from '../../routes/insight/rules.ts'
import { addDays, todayIn } from '../../routes/journal/zone.ts'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, userWithToken } from '../helpers/fixtures.ts'

type Insight = { id: string; kind: string; period_start: string; period_end: string; data: Record<string, number> }

async function insightsOf(u: UserWithToken): Promise<Insight[]> {
  const res = await u.call('GET', '/v1/insights')
  if (res.status !== 200) throw new Error(`insights: ${res.status}`)
  return res.body.data
}

t.test('currentStreak counts the run of days ending today or yesterday', async (t) => {
  t.same(currentStreak(['2024-03-01', '2024-03-02', '2024-03-03'], '2024-03-03'), { start: '2024-03-01', length: 3 })
  t.same(currentStreak(['2024-02-28', '2024-02-29', '2024-03-01'], '2024-03-02'), { start: '2024-02-28', length: 3 })
  t.equal(currentStreak(['2024-03-01'], '2024-03-03'), null, 'broken two days ago')
  t.same(weekStart('2024-03-03'), '2024-02-26', 'Sunday belongs to the week that began on Monday')
  t.same(weekStart('2024-03-04'), '2024-03-04')
})

t.test('insights', async (t) => {
  const app = await buildTestApp(t)
  const engine = createInsightEngine(app.db)

  t.test('mood trend: last week against the week before, from check-ins and day feedback', async (t) => {
    const zone = 'Asia/Tokyo'
    const u = await userWithToken(app, { timeZone: zone })
    const lastWeek = addDays(weekStart(todayIn(zone)), -7)
    const weekBefore = addDays(lastWeek, -7)
    // The week before: check-ins, two on one day (averaged: 2), three days in all.
    for (const [day, mood] of [
      [weekBefore, 1],
      [weekBefore, 3],
      [addDays(weekBefore, 2), 2],
      [addDays(weekBefore, 4), 2],
    ] as const) {
      t.equal((await u.call('POST', '/v1/checkins', { timestamp: `${day}T12:00:00+09:00`, mood })).status, 201)
    }
    // Last week: day feedback, which wins over a check-in of the same day.
    await u.call('POST', '/v1/checkins', { timestamp: `${lastWeek}T12:00:00+09:00`, mood: 1 })
    for (const i of [0, 1, 3]) await u.call('PUT', `/v1/day-feedback/${addDays(lastWeek, i)}`, { mood: 4 })

    const list = await insightsOf(u)
    t.equal(list.length, 1)
    t.match(list[0], {
      id: String,
      kind: 'mood_trend',
      period_start: lastWeek,
      period_end: addDays(lastWeek, 6),
      title: 'Your mood lifted last week',
      body: /average mood was 4 out of 5/,
      data: { mood_avg: 4, previous_mood_avg: 2, change: 2, days: 3, previous_days: 3 },
      created_at: String,
      feedback: null,
    })
    t.same((await u.call('GET', `/v1/insights/${list[0].id}`)).body, list[0])

    t.equal(await engine.generate(u.user.id), 0, 're-running generation adds nothing')
    t.same(await insightsOf(u), list, 'reading again adds nothing')
  })

  t.test('mood trend stays silent on a small change or too few days', async (t) => {
    const zone = 'UTC'
    const small = await userWithToken(app, { timeZone: zone })
    const sparse = await userWithToken(app, { timeZone: zone })
    const lastWeek = addDays(weekStart(todayIn(zone)), -7)
    const weekBefore = addDays(lastWeek, -7)
    for (const i of [0, 1, 2]) {
      await small.call('PUT', `/v1/day-feedback/${addDays(weekBefore, i)}`, { mood: 3 })
      await small.call('PUT', `/v1/day-feedback/${addDays(lastWeek, i)}`, { mood: i === 0 ? 4 : 3 })
      await sparse.call('PUT', `/v1/day-feedback/${addDays(weekBefore, i)}`, { mood: 1 })
    }
    // Only two days last week, however happy.
    for (const i of [0, 1]) await sparse.call('PUT', `/v1/day-feedback/${addDays(lastWeek, i)}`, { mood: 5 })
    t.same(await insightsOf(small), [], 'a change of 0.33 is not a trend')
    t.same(await insightsOf(sparse), [], 'two days are not a week')
  })

  t.test('journaling streak: milestones of consecutive days, alive through yesterday', async (t) => {
    const zone = 'America/Los_Angeles'
    const u = await userWithToken(app, { timeZone: zone })
    const today = todayIn(zone)
    // Yesterday and the 5 days before it: 6 days, no entry today yet.
    for (let i = 1; i <= 6; i++) await u.call('PUT', `/v1/day-feedback/${addDays(today, -i)}`, { rating: 6 })
    let list = await insightsOf(u)
    t.same(
      list.map((i) => [i.kind, i.period_start, i.period_end, i.data]),
      [['journaling_streak', addDays(today, -6), addDays(today, -4), { streak_days: 3 }]],
    )
    t.match(list[0], { title: '3 days of journaling in a row' })

    // Today's check-in makes it 7 days: one more insight, the first one stays.
    await u.call('POST', '/v1/checkins', { mood: 3 })
    list = await insightsOf(u)
    t.same(
      list.map((i) => [i.kind, i.period_start, i.period_end, i.data.streak_days]),
      [
        ['journaling_streak', addDays(today, -6), today, 7],
        ['journaling_streak', addDays(today, -6), addDays(today, -4), 3],
      ],
    )
    t.equal(await engine.generate(u.user.id), 0)
    t.equal((await insightsOf(u)).length, 2)
  })

  t.test('activity streak, and silence when a streak is too short or broken', async (t) => {
    const active = await userWithToken(app)
    const short = await userWithToken(app)
    const broken = await userWithToken(app)
    const today = todayIn('UTC')
    const at = (d: string) => `${d}T06:00:00Z`
    for (let i = 0; i < 4; i++) {
      const d = addDays(today, -i)
      await active.call('POST', '/v1/activities', { kind: 'walk', started_at: at(d), ended_at: at(d) })
    }
    for (let i = 0; i < 2; i++) {
      const d = addDays(today, -i)
      await short.call('POST', '/v1/activities', { kind: 'run', started_at: at(d), ended_at: at(d) })
    }
    for (let i = 2; i < 8; i++) {
      const d = addDays(today, -i)
      await broken.call('POST', '/v1/activities', { kind: 'yoga', started_at: at(d), ended_at: at(d) })
    }
    // Intentions are not activities.
    for (let i = 0; i < 4; i++) {
      const d = addDays(today, -i)
      await short.call('POST', '/v1/intentions', { kind: 'focus', started_at: at(d), ended_at: at(d) })
    }
    const list = await insightsOf(active)
    t.same(
      list.map((i) => [i.kind, i.period_start, i.period_end, i.data]),
      [['activity_streak', addDays(today, -3), addDays(today, -1), { streak_days: 3 }]],
    )
    t.match(list[0], { title: 'Active 3 days in a row', body: String })
    t.same(await insightsOf(short), [])
    t.same(await insightsOf(broken), [])
  })

  t.test('concurrent generation stores each insight once', async (t) => {
    const u = await userWithToken(app)
    const today = todayIn('UTC')
    for (let i = 0; i < 3; i++) await u.call('PUT', `/v1/day-feedback/${addDays(today, -i)}`, { mood: 3 })
    const added = await Promise.all([
      engine.generate(u.user.id),
      engine.generate(u.user.id),
      engine.generate(u.user.id),
    ])
    t.equal(
      added.reduce((a, b) => a + b, 0),
      1,
    )
    t.equal((await insightsOf(u)).length, 1)
  })

  t.test('feedback and reflections', async (t) => {
    const u = await userWithToken(app)
    const today = todayIn('UTC')
    for (let i = 0; i < 3; i++) await u.call('PUT', `/v1/day-feedback/${addDays(today, -i)}`, { mood: 3 })
    const [insight] = await insightsOf(u)
    const base = `/v1/insights/${insight.id}`

    const fb = await u.call('PUT', `${base}/feedback`, { helpful: true, comment: 'nice' })
    t.equal(fb.status, 200)
    t.match(fb.body, { helpful: true, comment: 'nice', created_at: String, updated_at: String })
    const fb2 = await u.call('PUT', `${base}/feedback`, { helpful: false })
    t.match(fb2.body, { helpful: false, comment: null, created_at: fb.body.created_at })
    t.match((await u.call('GET', base)).body, { feedback: { helpful: false, comment: null } })
    t.match(await u.call('PUT', `${base}/feedback`, { helpful: 'yes' }), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'helpful' }] },
    })
    t.match(await u.call('PUT', `${base}/feedback`, { helpful: true, comment: 'x'.repeat(1001) }), {
      status: 400,
      body: { details: [{ field: 'comment' }] },
    })
    t.same(await u.call('DELETE', `${base}/feedback`), { status: 200, body: { status: 'success' } })
    t.equal((await u.call('DELETE', `${base}/feedback`)).status, 404)
    t.match((await u.call('GET', base)).body, { feedback: null })

    const r1 = await u.call('POST', `${base}/reflections`, { text: 'I journal before bed.' })
    t.equal(r1.status, 201)
    t.match(r1.body, { id: String, insight_id: insight.id, text: 'I journal before bed.', created_at: String })
    const r2 = await u.call('POST', `${base}/reflections`, { text: 'Second thought.' })
    const r3 = await u.call('POST', `${base}/reflections`, { text: 'Third.' })
    const page1 = await u.call('GET', `${base}/reflections?limit=2`)
    t.same(
      page1.body.data.map((r: { id: string }) => r.id),
      [r1.body.id, r2.body.id],
      'oldest first',
    )
    const page2 = await u.call('GET', `${base}/reflections?limit=2&cursor=${page1.body.next_cursor}`)
    t.same(page2.body, { data: [r3.body], next_cursor: null })

    const edited = await u.call('PATCH', `${base}/reflections/${r2.body.id}`, { text: 'Edited.' })
    t.match(edited.body, { id: r2.body.id, text: 'Edited.', created_at: r2.body.created_at })
    t.same(await u.call('DELETE', `${base}/reflections/${r3.body.id}`), { status: 200, body: { status: 'success' } })
    t.equal((await u.call('DELETE', `${base}/reflections/${r3.body.id}`)).status, 404)

    for (const text of ['', '   ', 'x'.repeat(5001)]) {
      t.match(await u.call('POST', `${base}/reflections`, { text }), {
        status: 400,
        body: { error: 'validation_failed', details: [{ field: 'text' }] },
      })
    }

    const exported = []
    for await (const row of exportRows(app.db, u.user.id)) exported.push(row)
    t.match(exported, [
      {
        id: insight.id,
        kind: 'journaling_streak',
        reflections: [{ text: 'I journal before bed.' }, { text: 'Edited.' }],
      },
    ])
  })

  t.test('reflections per insight are bounded', async (t) => {
    const u = await userWithToken(app)
    const today = todayIn('UTC')
    for (let i = 0; i < 3; i++) await u.call('PUT', `/v1/day-feedback/${addDays(today, -i)}`, { mood: 3 })
    const [insight] = await insightsOf(u)
    const { insightReflections } = await import('../../db/schema/index.ts')
    await app.db
      .insert(insightReflections)
      .values(Array.from({ length: 100 }, (_, i) => ({ insightId: insight.id, userId: u.user.id, text: `r${i}` })))
    t.same(await u.call('POST', `/v1/insights/${insight.id}/reflections`, { text: 'one more' }), {
      status: 409,
      body: {
        error: 'too_many_reflections',
        message: 'An insight holds at most 100 reflections; edit or delete one.',
      },
    })
  })

  t.test("another user's insights and reflections answer 404 like missing ones", async (t) => {
    const alice = await userWithToken(app)
    const bob = await userWithToken(app)
    const today = todayIn('UTC')
    for (let i = 0; i < 3; i++) await alice.call('PUT', `/v1/day-feedback/${addDays(today, -i)}`, { mood: 3 })
    const [insight] = await insightsOf(alice)
    const reflection = (await alice.call('POST', `/v1/insights/${insight.id}/reflections`, { text: 'mine' })).body
    await alice.call('PUT', `/v1/insights/${insight.id}/feedback`, { helpful: true })
    const missing = '00000000-0000-4000-8000-000000000000'

    for (const id of [insight.id, missing]) {
      const base = `/v1/insights/${id}`
      const notFound = { status: 404, body: { error: 'not_found', message: 'No such insight.' } }
      t.same(await bob.call('GET', base), notFound)
      t.same(await bob.call('PUT', `${base}/feedback`, { helpful: false }), notFound)
      t.same(await bob.call('GET', `${base}/reflections`), notFound)
      t.same(await bob.call('POST', `${base}/reflections`, { text: 'hi' }), notFound)
      t.same(await bob.call('DELETE', `${base}/feedback`), {
        status: 404,
        body: { error: 'not_found', message: 'No feedback on this insight.' },
      })
      for (const rid of [reflection.id, missing]) {
        const gone = { status: 404, body: { error: 'not_found', message: 'No such reflection.' } }
        t.same(await bob.call('PATCH', `${base}/reflections/${rid}`, { text: 'x' }), gone)
        t.same(await bob.call('DELETE', `${base}/reflections/${rid}`), gone)
      }
    }
    t.same(await insightsOf(bob), [])
    t.match((await alice.call('GET', `/v1/insights/${insight.id}`)).body, { feedback: { helpful: true } }, 'untouched')
    t.same(
      (await alice.call('GET', `/v1/insights/${insight.id}/reflections`)).body.data.map(
        (r: { text: string }) => r.text,
      ),
      ['mine'],
    )
  })

  t.test('list pagination and kind filter', async (t) => {
    const u = await userWithToken(app)
    const today = todayIn('UTC')
    for (let i = 0; i < 3; i++) {
      const d = addDays(today, -i)
      await u.call('PUT', `/v1/day-feedback/${d}`, { mood: 3 })
      await u.call('POST', '/v1/activities', { kind: 'walk', started_at: `${d}T00:00:00Z`, ended_at: `${d}T00:00:00Z` })
    }
    const all = await insightsOf(u)
    t.same(all.map((i) => i.kind).sort(), ['activity_streak', 'journaling_streak'])
    const first = await u.call('GET', '/v1/insights?limit=1')
    const second = await u.call('GET', `/v1/insights?limit=1&cursor=${first.body.next_cursor}`)
    t.same([...first.body.data, ...second.body.data], all)
    t.equal(second.body.next_cursor, null)
    t.same(
      (await u.call('GET', '/v1/insights?kind=activity_streak')).body.data.map((i: Insight) => i.kind),
      ['activity_streak'],
    )
  })
})
