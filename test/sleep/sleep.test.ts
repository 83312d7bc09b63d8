import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest, series } from '../helpers/measurement.ts'

// Sleep through the API on hand-built nights: the watch sends its sleep stage every 5 minutes and an awake
// sample when the night ends; heart rate, HRV and respiratory rate come in alongside.

const MIN = 60_000
const EPOCH_MIN = 5
const ZONE = 'America/New_York'

/** sleep_stage samples every 5 minutes for each [stage, minutes] stretch from `start`, then a closing awake sample. */
function stages(start: string, stretches: Array<[number, number]>): Sample[] {
  let at = Date.parse(start)
  const out: Sample[] = []
  for (const [stage, minutes] of stretches) {
    for (let m = 0; m < minutes; m += EPOCH_MIN) {
      out.push({ type: 'sleep_stage', timestamp: new Date(at + m * MIN).toISOString(), value: stage })
    }
    at += minutes * MIN
  }
  out.push({ type: 'sleep_stage', timestamp: new Date(at).toISOString(), value: 0 })
  return out
}

// Night A: in bed 22:30 EDT on 2026-10-19 (02:30Z), 380 minutes, 340 of them asleep, ending on the 20th.
const NIGHT_A: Array<[number, number]> = [
  [0, 20],
  [1, 90],
  [2, 60],
  [3, 40],
  [0, 10],
  [1, 100],
  [3, 50],
  [0, 10],
]
const A_START = '2026-10-20T02:30:00Z'

async function sleepOf(u: UserWithToken, query: string, prefix = '/v1') {
  const res = await u.call('GET', `${prefix}/sleep${query}`)
  return res
}

t.test('sleep sessions and daily sleep', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app, { timeZone: ZONE })
  await ingest(app, owner.headers, stages(A_START, NIGHT_A), 'watch-1')
  // Heart rate each minute in bed: 60 bpm, one minute at 48; HRV every 5 minutes; respiratory rate.
  await ingest(app, owner.headers, [
    ...series('heart_rate', A_START, 380, (i) => (i === 200 ? 48 : 60), MIN),
    ...series('hrv_rmssd', A_START, 76, (i) => (i % 2 ? 50 : 30), 5 * MIN),
    ...series('respiratory_rate', A_START, 38, () => 14, 10 * MIN),
    // Outside the session: does not count.
    ...series('heart_rate', '2026-10-20T12:00:00Z', 10, () => 120, MIN),
  ])
  // A nap on the 20th at 14:00 EDT: 30 minutes light.
  await ingest(app, owner.headers, stages('2026-10-20T18:00:00Z', [[1, 30]]), 'watch-1')
  // The night the clocks fall back: 22:00 EDT on 2026-10-31 to 07:00 EST is 10 hours of light sleep.
  await ingest(app, owner.headers, stages('2026-11-01T02:00:00Z', [[1, 600]]), 'watch-1')

  t.test('GET /v1/sleep: every session, with its stages and vitals', async (t) => {
    const res = await sleepOf(owner, '?from=2026-10-19&to=2026-11-01')
    t.equal(res.status, 200)
    t.equal(res.body.time_zone, ZONE)
    t.equal(res.body.next_cursor, null)
    const [a, nap, dst, ...rest] = res.body.data
    t.same(rest, [])
    t.same(
      { ...a, id: 'x' },
      {
        id: 'x',
        date: '2026-10-20',
        kind: 'main',
        device_id: 'watch-1',
        start: '2026-10-20T02:30:00.000Z',
        end: '2026-10-20T08:50:00.000Z',
        sleep_onset: '2026-10-20T02:50:00.000Z',
        wake: '2026-10-20T08:40:00.000Z',
        in_bed: 380 * 60,
        asleep: 340 * 60,
        awake: 40 * 60,
        unrecorded: 0,
        light: 190 * 60,
        deep: 60 * 60,
        rem: 90 * 60,
        latency: 20 * 60,
        efficiency: 340 / 380,
        heart_rate_avg: (379 * 60 + 48) / 380,
        heart_rate_lowest: 48,
        hrv_rmssd_avg: 40,
        respiratory_rate_avg: 14,
      },
    )
    t.match(a.id, /^[0-9a-f-]{36}$/)
    t.match(nap, { date: '2026-10-20', kind: 'nap', asleep: 30 * 60, heart_rate_avg: null })
    t.match(dst, {
      date: '2026-11-01',
      kind: 'main',
      start: '2026-11-01T02:00:00.000Z',
      end: '2026-11-01T12:00:00.000Z',
      asleep: 600 * 60,
      efficiency: 1,
    })
    t.same((await sleepOf(owner, '?from=2026-10-19&to=2026-11-01')).body, res.body, 'the same on every read')

    // Pages of one: the same sessions in the same order.
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await sleepOf(
        owner,
        `?from=2026-10-19&to=2026-11-01&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      )
      t.equal(page.status, 200)
      seen.push(...page.body.data.map((s: { id: string }) => s.id))
      cursor = page.body.next_cursor
    } while (cursor)
    t.same(seen, [a.id, nap.id, dst.id])
    t.same(
      (await sleepOf(owner, '?from=2026-10-21&to=2026-10-31')).body,
      { time_zone: ZONE, data: [], next_cursor: null },
      'nothing dated in between',
    )
  })

  t.test('GET /v1/sleep/daily: per day against the goal', async (t) => {
    const list = (await sleepOf(owner, '?from=2026-10-20&to=2026-10-20')).body.data
    const res = await sleepOf(owner, '/daily?from=2026-10-20&to=2026-10-21')
    t.equal(res.status, 200)
    t.same(res.body, {
      time_zone: ZONE,
      data: [
        {
          date: '2026-10-20',
          total_sleep: 370 * 60,
          main_sleep: 340 * 60,
          main_session_id: list[0].id,
          session_count: 2,
          sleep_time_goal: 28800,
          goal_difference: 370 * 60 - 28800,
          goal_met: false,
        },
        {
          date: '2026-10-21',
          total_sleep: null,
          main_sleep: null,
          main_session_id: null,
          session_count: 0,
          sleep_time_goal: 28800,
          goal_difference: null,
          goal_met: null,
        },
      ],
    })
    t.equal((await owner.call('PATCH', '/v1/users/me', { sleep_time_goal: 6 * 3600 })).status, 200)
    const after = await sleepOf(owner, '/daily?from=2026-10-20&to=2026-10-20')
    t.match(after.body.data[0], { sleep_time_goal: 21600, goal_difference: 370 * 60 - 21600, goal_met: true })
  })

  t.test('statistics show the same sleep', async (t) => {
    const daily = await owner.call('GET', '/v1/statistics/daily?from=2026-10-19&to=2026-10-20')
    t.same(
      daily.body.data.map((d: { date: string; sleep_time: number | null }) => [d.date, d.sleep_time]),
      [
        ['2026-10-19', null],
        ['2026-10-20', 370 * 60],
      ],
    )
    const week = await owner.call('GET', '/v1/statistics/summary?period=week&date=2026-10-20')
    t.same(week.body.metrics.sleep_time, { value: 370 * 60, previous: null, change: null, change_percent: null })
    // The week of 2026-10-26..11-01 has the DST night only.
    const next = await owner.call('GET', '/v1/statistics/summary?period=week&date=2026-10-27')
    t.same(next.body.metrics.sleep_time, {
      value: 600 * 60,
      previous: 370 * 60,
      change: 230 * 60,
      change_percent: (100 * 230) / 370,
    })
  })

  t.test('bad ranges and cursors', async (t) => {
    const backwards = await sleepOf(owner, '?from=2026-10-20&to=2026-10-19')
    t.match(backwards, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.to' }] } })
    const notADay = await sleepOf(owner, '/daily?from=2026-02-30&to=2026-03-01')
    t.match(notADay, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.from' }] } })
    t.match(await sleepOf(owner, '/daily?from=2025-01-01&to=2026-01-02'), {
      status: 400,
      body: { error: 'range_too_large' },
    })
    t.match(await sleepOf(owner, '?from=2026-10-19&to=2026-10-20&cursor=bm9wZQ'), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'query.cursor' }] },
    })
    t.match(await sleepOf(owner, '?from=2026-10-19'), { status: 400, body: { error: 'validation_failed' } })
    const none = await app.inject({ method: 'GET', url: '/v1/sleep?from=2026-10-19&to=2026-10-20' })
    t.equal(none.statusCode, 401)
  })

  t.test('another user sees none of it, and the owner none of theirs', async (t) => {
    const other = await userWithToken(app, { timeZone: ZONE })
    await ingest(app, other.headers, stages('2026-10-20T03:00:00Z', [[2, 200]]))
    const theirs = await sleepOf(other, '?from=2026-10-19&to=2026-11-01')
    t.same(
      theirs.body.data.map((s: { asleep: number }) => s.asleep),
      [200 * 60],
    )
    const mine = await sleepOf(owner, '?from=2026-10-19&to=2026-11-01')
    t.equal(mine.body.data.length, 3)
    t.notOk(
      mine.body.data.some((s: { id: string }) => s.id === theirs.body.data[0].id),
      'no id of theirs among mine',
    )
  })

  t.test('shared viewers: the measurement scope opens sleep, nothing else does', async (t) => {
    const viewer = await userWithToken(app, { timeZone: 'Asia/Tokyo' })
    const partial = await userWithToken(app)
    const stranger = await userWithToken(app)
    for (const [who, scopes] of [
      [viewer, ['measurement']],
      [partial, ['checkin', 'statistics']],
    ] as const) {
      const invite = await owner.call('POST', '/v1/sharing/invites', { email: who.user.email, scopes })
      t.equal(invite.status, 201)
      t.equal((await who.call('POST', `/v1/shared/invites/${invite.body.id}/accept`)).status, 200)
    }
    const prefix = `/v1/shared/${owner.user.id}`
    for (const query of ['?from=2026-10-19&to=2026-11-01', '/daily?from=2026-10-19&to=2026-11-01']) {
      const own = await sleepOf(owner, query)
      t.same(await sleepOf(viewer, query, prefix), own, `viewer ${query}: the owner's answer, in the owner's zone`)
      t.same(await sleepOf(partial, query, prefix), {
        status: 403,
        body: { error: 'forbidden', message: 'This share does not include measurement.' },
      })
      t.same(await sleepOf(stranger, query, prefix), {
        status: 404,
        body: { error: 'not_found', message: 'Nothing is shared with you by this user.' },
      })
    }
  })

  t.test('the account export holds the sessions', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: owner.headers })
    t.equal(res.statusCode, 200)
    const all = await sleepOf(owner, '?from=2026-10-01&to=2026-11-30')
    t.same(res.json().sections.sleep, all.body.data)
  })
})

t.test('late and deleted samples show on the next read', async (t) => {
  const app = await buildTestApp(t)
  const u = await userWithToken(app, { timeZone: ZONE })
  const night = stages(A_START, NIGHT_A)
  const total = async () => (await sleepOf(u, '/daily?from=2026-10-20&to=2026-10-20')).body.data[0].total_sleep
  // The watch syncs the first three hours: up to the REM sample of 05:25Z, which has no end yet.
  const cut = Date.parse('2026-10-20T05:30:00Z')
  await ingest(
    app,
    u.headers,
    night.filter((s) => Date.parse(s.timestamp) < cut),
  )
  t.equal(await total(), (90 + 60 + 5) * 60, 'light, deep and 5 minutes of REM')
  await ingest(
    app,
    u.headers,
    night.filter((s) => Date.parse(s.timestamp) >= cut),
  )
  t.equal(await total(), 340 * 60, 'the rest arrived: the whole night')
  const del = await u.call(
    'DELETE',
    '/v1/measurements?type=sleep_stage&from=2026-10-20T06:00:00Z&to=2026-10-20T09:00:00Z',
  )
  t.equal(del.status, 200)
  // Left: light 90, deep 60 and REM from 05:20Z to the last sample at 05:55Z, which has no end.
  t.equal(await total(), (90 + 60 + 35) * 60, 'deleted samples no longer count')
  await u.call('DELETE', '/v1/measurements?from=2026-10-19T00:00:00Z&to=2026-10-21T00:00:00Z')
  t.same((await sleepOf(u, '?from=2026-10-20&to=2026-10-20')).body.data, [], 'all gone')
})

t.test('pages across months: every session once, in order', async (t) => {
  const app = await buildTestApp(t)
  const u = await userWithToken(app, { timeZone: 'Asia/Tokyo' })
  // Nights ending on these Tokyo days (23:00 to 06:00 local, 14:00Z to 21:00Z the day before).
  const days = ['2026-07-02', '2026-08-15', '2026-08-16', '2026-10-30']
  for (const day of days) {
    const start = new Date(Date.parse(`${day}T00:00:00Z`) - 10 * 3600_000).toISOString()
    await ingest(app, u.headers, stages(start, [[1, 420]]))
  }
  for (const limit of [1, 2, 3, 50]) {
    const dates: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await sleepOf(
        u,
        `?from=2026-07-01&to=2026-10-31&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      )
      t.equal(res.status, 200)
      dates.push(...res.body.data.map((s: { date: string }) => s.date))
      cursor = res.body.next_cursor
      pages++
    } while (cursor)
    t.same(dates, days, `limit ${limit}`)
    t.equal(pages, Math.max(1, Math.ceil(days.length / limit)), `limit ${limit}: no empty last page`)
  }
})
