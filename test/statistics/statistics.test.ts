import t from 'tap'
import { createMeasurementRepository } from '../../routes/measurement/repository.ts'
import { periodsOf } from '../../routes/statistics/index.ts'
import { createStatisticsRepository } from '../../routes/statistics/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest, series } from '../helpers/measurement.ts'

const MINUTE = 60_000
const QUARTER = 15 * MINUTE

/** A day of heart rate every minute at 70 from local midnight (given in UTC), with a calm and a stray minute. */
function heartDay(midnightUtc: string, minutes: number): Sample[] {
  const t0 = Date.parse(midnightUtc)
  return series(
    'heart_rate',
    t0,
    minutes,
    (i) => {
      if (i >= 180 && i < 185) return 50 // 03:00-03:05 local: the resting window
      if (i === 602) return 40 // one stray low minute in a window of 70s: mean 64
      return 70
    },
    MINUTE,
  )
}

t.test('statistics', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app, { timeZone: 'Europe/Berlin' })
  const bob = await userWithToken(app, { timeZone: 'Europe/Berlin' })

  // Saturday 30 March to Monday 1 April 2024 (Sunday is 23 hours long) in Berlin.
  await ingest(app, alice.headers, heartDay('2024-03-29T23:00:00Z', 24 * 60))
  await ingest(app, alice.headers, heartDay('2024-03-30T23:00:00Z', 23 * 60))
  await ingest(
    app,
    alice.headers,
    series('steps', '2024-03-29T23:00:00Z', 4 * 71, () => 10, QUARTER),
  )
  await ingest(
    app,
    alice.headers,
    series('active_energy', '2024-03-30T23:00:00Z', 4, () => 2.5, QUARTER),
  )
  await ingest(
    app,
    alice.headers,
    series('skin_temperature', '2024-03-30T23:00:00Z', 3, (i) => 33 + i, QUARTER),
  )
  await ingest(
    app,
    alice.headers,
    series('stress', '2024-03-31T21:59:00Z', 2, (i) => 10 + 80 * i, MINUTE),
  )
  // Monday has heart rate in only two minutes of a window: no resting value, but an average.
  await ingest(
    app,
    alice.headers,
    series('heart_rate', '2024-04-01T06:00:00Z', 2, () => 55, MINUTE),
  )

  t.test('daily statistics per local day, across a DST change', async (t) => {
    const { status, body } = await alice.call('GET', '/v1/statistics/daily?from=2024-03-29&to=2024-04-01')
    t.equal(status, 200)
    t.equal(body.time_zone, 'Europe/Berlin')
    const nothing = {
      resting_heart_rate: null,
      heart_rate_avg: null,
      heart_rate_min: null,
      heart_rate_max: null,
      hrv_rmssd_avg: null,
      skin_temperature_avg: null,
      spo2_avg: null,
      respiratory_rate_avg: null,
      stress_avg: null,
      steps: null,
      distance: null,
      active_energy: null,
      sleep_time: null,
      mood: null,
      checkin_count: 0,
    }
    const hrAvg = (minutes: number) => (70 * (minutes - 6) + 50 * 5 + 40) / minutes
    t.same(body.data[0], { date: '2024-03-29', ...nothing }, 'a day without data is there, all null')
    t.same(body.data[1], {
      ...nothing,
      date: '2024-03-30',
      resting_heart_rate: 50,
      heart_rate_avg: hrAvg(1440),
      heart_rate_min: 40,
      heart_rate_max: 70,
      steps: 960,
    })
    t.same(
      body.data[2],
      {
        ...nothing,
        date: '2024-03-31',
        resting_heart_rate: 50,
        heart_rate_avg: hrAvg(1380),
        heart_rate_min: 40,
        heart_rate_max: 70,
        skin_temperature_avg: 34,
        stress_avg: 10,
        steps: 920,
        active_energy: 10,
      },
      'the 23-hour day: 92 quarters of steps; the stress sample at 23:59 local belongs to it',
    )
    t.same(body.data[3], {
      ...nothing,
      date: '2024-04-01',
      heart_rate_avg: 55,
      heart_rate_min: 55,
      heart_rate_max: 55,
      stress_avg: 90,
      steps: 960,
    })
    // The repository function other domains call gives the same rows.
    t.same(await createStatisticsRepository(app.db).daily(alice.user.id, '2024-03-29', '2024-04-01'), body.data)
    t.same(
      await createMeasurementRepository(app.db).daily(alice.user.id, '2024-03-29', '2024-04-01'),
      body.data.map(({ mood, checkin_count, sleep_time, ...measured }: Record<string, unknown>) => measured),
    )

    t.match(await alice.call('GET', '/v1/statistics/daily?from=2024-02-30&to=2024-03-01'), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'query.from' }] },
    })
    t.match(await alice.call('GET', '/v1/statistics/daily?from=2024-03-02&to=2024-03-01'), {
      status: 400,
      body: { error: 'validation_failed' },
    })
    t.match(await alice.call('GET', '/v1/statistics/daily?from=2023-01-01&to=2024-03-01'), {
      status: 400,
      body: { error: 'range_too_large' },
    })
  })

  t.test('deleting samples changes the statistics at once', async (t) => {
    const res = await app.inject({
      method: 'DELETE',
      url: '/v1/measurements?type=steps&from=2024-04-01T12:00:00Z&to=2024-04-02T00:00:00Z',
      headers: alice.headers,
    })
    t.same(res.json(), { deleted: 40 })
    const { body } = await alice.call('GET', '/v1/statistics/daily?from=2024-04-01&to=2024-04-01')
    t.equal(body.data[0].steps, 560)
  })

  t.test('week and month summaries with the change against the previous period', async (t) => {
    t.same(periodsOf('week', '2024-04-03'), {
      current: { from: '2024-04-01', to: '2024-04-07' },
      previous: { from: '2024-03-25', to: '2024-03-31' },
    })
    t.same(periodsOf('month', '2024-03-31'), {
      current: { from: '2024-03-01', to: '2024-03-31' },
      previous: { from: '2024-02-01', to: '2024-02-29' },
    })
    t.same(periodsOf('month', '2024-01-15').previous, { from: '2023-12-01', to: '2023-12-31' })

    const week = await alice.call('GET', '/v1/statistics/summary?period=week&date=2024-04-03')
    t.equal(week.status, 200)
    t.match(week.body, {
      period: 'week',
      time_zone: 'Europe/Berlin',
      current: { from: '2024-04-01', to: '2024-04-07' },
      previous: { from: '2024-03-25', to: '2024-03-31' },
      days_with_data: 1,
      previous_days_with_data: 2,
    })
    const m = week.body.metrics
    t.same(m.steps, { value: 560, previous: 1880, change: -1320, change_percent: (-1320 / 1880) * 100 })
    t.same(m.resting_heart_rate, { value: null, previous: 50, change: null, change_percent: null })
    t.same(m.heart_rate_max, { value: 55, previous: 70, change: -15, change_percent: (-15 / 70) * 100 })
    const sum = 70 * (2820 - 12) + 50 * 10 + 80
    t.ok(Math.abs(m.heart_rate_avg.previous - sum / 2820) < 1e-9, 'weighted by samples over both days')
    t.same(m.stress_avg, { value: 90, previous: 10, change: 80, change_percent: 800 })

    const month = await alice.call('GET', '/v1/statistics/summary?period=month&date=2024-03-10')
    t.match(month.body, {
      current: { from: '2024-03-01', to: '2024-03-31' },
      previous: { from: '2024-02-01', to: '2024-02-29' },
      days_with_data: 2,
      previous_days_with_data: 0,
    })
    t.same(month.body.metrics.steps, { value: 1880, previous: null, change: null, change_percent: null })
    t.same(periodsOf('week', '2024-04-03', 'sunday'), {
      current: { from: '2024-03-31', to: '2024-04-06' },
      previous: { from: '2024-03-24', to: '2024-03-30' },
    })
    t.same(periodsOf('week', '2024-03-31', 'sunday').current, { from: '2024-03-31', to: '2024-04-06' }, 'a Sunday')
    t.same(periodsOf('week', '2024-03-31').current, { from: '2024-03-25', to: '2024-03-31' })
    const setWeekStart = (value: string | null) =>
      app.inject({
        method: 'PUT',
        url: '/v1/users/me/settings',
        headers: alice.headers,
        payload: { week_start: value },
      })
    t.equal((await setWeekStart('sunday')).statusCode, 200)
    const sundayWeek = await alice.call('GET', '/v1/statistics/summary?period=week&date=2024-04-03')
    t.match(sundayWeek.body, {
      current: { from: '2024-03-31', to: '2024-04-06' },
      previous: { from: '2024-03-24', to: '2024-03-30' },
    })
    t.not(sundayWeek.body.days_with_data, undefined)
    const sundayMonth = await alice.call('GET', '/v1/statistics/summary?period=month&date=2024-03-10')
    t.same(sundayMonth.body.current, month.body.current, 'months do not depend on it')
    await setWeekStart(null)
    const today = await alice.call('GET', '/v1/statistics/summary?period=week')
    t.equal(today.status, 200, 'date defaults to today')
    t.match(await alice.call('GET', '/v1/statistics/summary?period=year'), {
      status: 400,
      body: { error: 'validation_failed', details: [{ field: 'query.period' }] },
    })
  })

  t.test("another user's statistics are never mixed in", async (t) => {
    const { body } = await bob.call('GET', '/v1/statistics/daily?from=2024-03-30&to=2024-03-31')
    t.same(
      body.data.map((d: Record<string, unknown>) => Object.values(d).filter((v) => v !== null).length),
      [2, 2],
      'only the dates and a check-in count of 0',
    )
    const week = await bob.call('GET', '/v1/statistics/summary?period=week&date=2024-04-03')
    t.equal(week.body.days_with_data, 0)
    t.equal(week.body.metrics.steps.previous, null)
    const res = await app.inject({ url: '/v1/statistics/daily?from=2024-03-30&to=2024-03-31' })
    t.equal(res.statusCode, 401)
  })
})

t.test('mood and check-ins per local day and per period', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app, { timeZone: 'America/New_York' })
  const bob = await userWithToken(app, { timeZone: 'America/New_York' })
  const ok = async (res: Promise<{ status: number }>) => t.ok([200, 201].includes((await res).status))

  // Monday 1 April 2024, New York (UTC-4): 08:00 and 23:30 local, the second already 2 April in UTC.
  await ok(alice.call('POST', '/v1/checkins', { timestamp: '2024-04-01T12:00:00Z', mood: 2 }))
  await ok(alice.call('POST', '/v1/checkins', { timestamp: '2024-04-02T03:30:00Z', mood: 4 }))
  // Tuesday: the day feedback's mood wins over the check-in.
  await ok(alice.call('POST', '/v1/checkins', { timestamp: '2024-04-02T14:00:00Z', mood: 1 }))
  await ok(alice.call('PUT', '/v1/day-feedback/2024-04-02', { mood: 5 }))
  // Wednesday: a day feedback without a mood leaves the check-in's.
  await ok(alice.call('POST', '/v1/checkins', { timestamp: '2024-04-03T14:00:00Z', mood: 2 }))
  await ok(alice.call('PUT', '/v1/day-feedback/2024-04-03', { rating: 7 }))
  // Thursday: day feedback only.
  await ok(alice.call('PUT', '/v1/day-feedback/2024-04-04', { mood: 4 }))
  // The week before: one check-in.
  await ok(alice.call('POST', '/v1/checkins', { timestamp: '2024-03-26T14:00:00Z', mood: 3 }))
  // Bob's journal never mixes in.
  await ok(bob.call('POST', '/v1/checkins', { timestamp: '2024-04-01T14:00:00Z', mood: 5 }))
  await ok(bob.call('PUT', '/v1/day-feedback/2024-04-05', { mood: 1 }))

  const daily = await alice.call('GET', '/v1/statistics/daily?from=2024-04-01&to=2024-04-05')
  t.equal(daily.status, 200)
  t.same(
    daily.body.data.map((d: { date: string; mood: number | null; checkin_count: number }) => [
      d.date,
      d.mood,
      d.checkin_count,
    ]),
    [
      ['2024-04-01', 3, 2],
      ['2024-04-02', 5, 1],
      ['2024-04-03', 2, 1],
      ['2024-04-04', 4, 0],
      ['2024-04-05', null, 0],
    ],
  )

  const week = await alice.call('GET', '/v1/statistics/summary?period=week&date=2024-04-05')
  t.same(week.body.metrics.mood, { value: 3.5, previous: 3, change: 0.5, change_percent: (100 * 0.5) / 3 })
  t.same(week.body.metrics.checkin_count, { value: 4, previous: 1, change: 3, change_percent: 300 })
  t.equal(week.body.days_with_data, 0, 'days_with_data counts days with measurements only')

  const month = await alice.call('GET', '/v1/statistics/summary?period=month&date=2024-04-05')
  t.same(month.body.metrics.mood, { value: 3.5, previous: 3, change: 0.5, change_percent: (100 * 0.5) / 3 })
  t.same(month.body.metrics.checkin_count, { value: 4, previous: 1, change: 3, change_percent: 300 })

  const empty = await alice.call('GET', '/v1/statistics/summary?period=month&date=2024-02-10')
  t.same(empty.body.metrics.mood, { value: null, previous: null, change: null, change_percent: null })
  t.same(empty.body.metrics.checkin_count, { value: 0, previous: 0, change: 0, change_percent: null })

  const bobs = await bob.call('GET', '/v1/statistics/daily?from=2024-04-01&to=2024-04-05')
  t.same(
    bobs.body.data.map((d: { mood: number | null; checkin_count: number }) => [d.mood, d.checkin_count]),
    [
      [5, 1],
      [null, 0],
      [null, 0],
      [null, 0],
      [1, 0],
    ],
  )
})
