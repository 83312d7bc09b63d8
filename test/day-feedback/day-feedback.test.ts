import t from 'tap'
import { exportRows } from '../../routes/day-feedback/repository.ts'
import { addDays, todayIn } from '../../routes/journal/zone.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('day feedback', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)

  t.test('put creates then replaces; get and delete', async (t) => {
    const created = await alice.call('PUT', '/v1/day-feedback/2024-02-29', {
      mood: 4,
      rating: 8,
      note: 'good day',
      tags: ['family', 'hike-day'],
    })
    t.equal(created.status, 201)
    t.match(created.body, {
      date: '2024-02-29',
      mood: 4,
      rating: 8,
      note: 'good day',
      tags: ['family', 'hike-day'],
      created_at: String,
      updated_at: String,
    })
    const replaced = await alice.call('PUT', '/v1/day-feedback/2024-02-29', { rating: 3 })
    t.equal(replaced.status, 200)
    t.same(
      { ...replaced.body, updated_at: undefined },
      { ...created.body, mood: null, rating: 3, note: null, tags: [], updated_at: undefined },
      'replaced as a whole; created_at kept',
    )
    t.same((await alice.call('GET', '/v1/day-feedback/2024-02-29')).body, replaced.body)
    t.same(await alice.call('DELETE', '/v1/day-feedback/2024-02-29'), { status: 200, body: { status: 'success' } })
    t.same(await alice.call('GET', '/v1/day-feedback/2024-02-29'), {
      status: 404,
      body: { error: 'not_found', message: 'No feedback for this day.' },
    })
    t.equal((await alice.call('DELETE', '/v1/day-feedback/2024-02-29')).status, 404)
  })

  t.test('bad input answers 400 validation_failed with the field', async (t) => {
    const cases: Array<[string, unknown, string]> = [
      ['2024-01-01', { mood: 6 }, 'mood'],
      ['2024-01-01', { mood: 0 }, 'mood'],
      ['2024-01-01', { rating: 11 }, 'rating'],
      ['2024-01-01', { rating: 0 }, 'rating'],
      ['2024-01-01', { mood: 3, note: 'x'.repeat(2001) }, 'note'],
      ['2024-01-01', { mood: 3, tags: ['Not A Tag'] }, 'tags[0]'],
      ['2024-01-01', { mood: 3, weather: 'sunny' }, 'weather'],
      ['2024-01-01', {}, 'body'],
      ['2024-01-01', { tags: ['work'] }, 'body'],
      ['2024-02-30', { mood: 3 }, 'params.date'],
      ['2024-1-01', { mood: 3 }, 'params.date'],
      ['2999-01-01', { mood: 3 }, 'params.date'],
    ]
    for (const [date, payload, field] of cases) {
      const res = await alice.call('PUT', `/v1/day-feedback/${date}`, payload)
      t.equal(res.status, 400, `${date} ${JSON.stringify(payload).slice(0, 60)}`)
      t.equal(res.body.error, 'validation_failed')
      t.ok(
        res.body.details.some((d: { field: string }) => d.field === field),
        `${field} in ${JSON.stringify(res.body.details)}`,
      )
    }
  })

  t.test("a future day is judged in the user's own time zone", async (t) => {
    // Kiritimati (UTC+14) is always at least one calendar day ahead of Pago Pago (UTC-11).
    const ahead = await userWithToken(app, { timeZone: 'Pacific/Kiritimati' })
    const behind = await userWithToken(app, { timeZone: 'Pacific/Pago_Pago' })
    const aheadToday = todayIn('Pacific/Kiritimati')
    t.equal((await ahead.call('PUT', `/v1/day-feedback/${aheadToday}`, { mood: 5 })).status, 201)
    t.match(await ahead.call('PUT', `/v1/day-feedback/${addDays(aheadToday, 1)}`, { mood: 5 }), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'params.date', problem: 'must not be in the future' }] },
    })
    t.match(await behind.call('PUT', `/v1/day-feedback/${aheadToday}`, { mood: 5 }), {
      status: 400,
      body: { details: [{ field: 'params.date' }] },
    })
    t.equal((await behind.call('PUT', `/v1/day-feedback/${todayIn('Pacific/Pago_Pago')}`, { mood: 5 })).status, 201)
  })

  t.test('list by range, paginated, newest day first', async (t) => {
    const carol = await userWithToken(app)
    const days = Array.from({ length: 9 }, (_, i) => addDays('2024-05-01', i))
    for (const [i, d] of days.entries()) await carol.call('PUT', `/v1/day-feedback/${d}`, { mood: (i % 5) + 1 })
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res = await carol.call('GET', `/v1/day-feedback?limit=4${cursor ? `&cursor=${cursor}` : ''}`)
      t.equal(res.status, 200)
      seen.push(...res.body.data.map((d: { date: string }) => d.date))
      cursor = res.body.next_cursor
    } while (cursor)
    t.same(seen, [...days].reverse())
    const ranged = await carol.call('GET', '/v1/day-feedback?from=2024-05-03&to=2024-05-05')
    t.same(
      ranged.body.data.map((d: { date: string; mood: number }) => [d.date, d.mood]),
      [
        ['2024-05-05', 5],
        ['2024-05-04', 4],
        ['2024-05-03', 3],
      ],
    )
    t.match(await carol.call('GET', '/v1/day-feedback?from=2024-05-05&to=2024-05-03'), {
      status: 400,
      body: { details: [{ field: 'query.to' }] },
    })
    t.match(await carol.call('GET', '/v1/day-feedback?from=yesterday'), {
      status: 400,
      body: { details: [{ field: 'query.from' }] },
    })
    const rows = []
    for await (const row of exportRows(app.db, carol.user.id)) rows.push(row)
    t.same(
      rows.map((r) => r.date),
      days,
    )
  })

  t.test("another user's days answer 404 like missing ones", async (t) => {
    await alice.call('PUT', '/v1/day-feedback/2024-07-01', { mood: 1, note: 'private' })
    for (const day of ['2024-07-01', '2024-07-02']) {
      t.same(await bob.call('GET', `/v1/day-feedback/${day}`), {
        status: 404,
        body: { error: 'not_found', message: 'No feedback for this day.' },
      })
      t.equal((await bob.call('DELETE', `/v1/day-feedback/${day}`)).status, 404)
    }
    t.same((await bob.call('GET', '/v1/day-feedback')).body, { data: [], next_cursor: null })
    // Bob's own entry for the same day is his, and leaves Alice's untouched.
    t.equal((await bob.call('PUT', '/v1/day-feedback/2024-07-01', { mood: 5 })).status, 201)
    t.match((await alice.call('GET', '/v1/day-feedback/2024-07-01')).body, { mood: 1, note: 'private' })
  })
})
