import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series } from '../helpers/measurement.ts'

const QUARTER = 15 * 60_000

t.test('buckets follow the user time zone', async (t) => {
  const app = await buildTestApp(t)

  t.test('Europe/Berlin: DST days have 23 and 25 hours', async (t) => {
    const { headers, call } = await userWithToken(app, { timeZone: 'Europe/Berlin' })
    // One sample every 15 minutes from Saturday 00:00 local before each change to Monday 00:00.
    await ingest(
      app,
      headers,
      series('heart_rate', '2024-03-29T23:00:00Z', 4 * 71, (i) => 60 + (i % 10), QUARTER),
    )
    await ingest(
      app,
      headers,
      series('heart_rate', '2024-10-25T22:00:00Z', 4 * 73, (i) => 60 + (i % 10), QUARTER),
    )
    const spring = await call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=2024-03-29T23:00:00Z&to=2024-04-01T22:00:00Z',
    )
    t.equal(spring.body.time_zone, 'Europe/Berlin')
    t.match(spring.body.data, [
      { date: '2024-03-30', start: '2024-03-29T23:00:00.000Z', end: '2024-03-30T23:00:00.000Z', count: 96 },
      { date: '2024-03-31', start: '2024-03-30T23:00:00.000Z', end: '2024-03-31T22:00:00.000Z', count: 92 },
      { date: '2024-04-01', start: '2024-03-31T22:00:00.000Z', end: '2024-04-01T22:00:00.000Z', count: 96 },
    ])
    const autumn = await call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=2024-10-25T22:00:00Z&to=2024-10-28T23:00:00Z',
    )
    t.match(autumn.body.data, [
      { date: '2024-10-26', start: '2024-10-25T22:00:00.000Z', end: '2024-10-26T22:00:00.000Z', count: 96 },
      { date: '2024-10-27', start: '2024-10-26T22:00:00.000Z', end: '2024-10-27T23:00:00.000Z', count: 100 },
      { date: '2024-10-28', start: '2024-10-27T23:00:00.000Z', end: '2024-10-28T23:00:00.000Z', count: 96 },
    ])
    // 02:00-03:00 local happens twice on 27 October: two hour buckets, not one of two hours.
    const hours = await call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=2024-10-26T23:00:00Z&to=2024-10-27T02:00:00Z',
    )
    t.same(
      hours.body.data.map((b: { start: string; count: number }) => [b.start, b.count]),
      [
        ['2024-10-26T23:00:00.000Z', 4],
        ['2024-10-27T00:00:00.000Z', 4],
        ['2024-10-27T01:00:00.000Z', 4],
      ],
    )
  })

  t.test('Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45): hours and days start off the UTC hour', async (t) => {
    // A local hour starts at UTC minute `minutes` (local 00:00 at +05:45 is 18:15 UTC).
    for (const [timeZone, minutes, dayStart] of [
      ['Asia/Kolkata', 30, '2024-06-09T18:30:00.000Z'],
      ['Asia/Kathmandu', 15, '2024-06-09T18:15:00.000Z'],
    ] as const) {
      const { headers, call } = await userWithToken(app, { timeZone })
      await ingest(
        app,
        headers,
        series('stress', '2024-06-09T12:00:00Z', 24 * 60, (i) => i % 100, 60_000),
      )
      const hours = await call(
        'GET',
        '/v1/measurements/aggregate?type=stress&bucket=1h&from=2024-06-09T12:00:00Z&to=2024-06-09T15:00:00Z',
      )
      t.same(
        hours.body.data.map((b: { start: string; count: number }) => [b.start.slice(11, 16), b.count]),
        [
          [`11:${minutes}`, minutes],
          [`12:${minutes}`, 60],
          [`13:${minutes}`, 60],
          [`14:${minutes}`, 60 - minutes],
        ],
        `${timeZone} hours`,
      )
      const days = await call(
        'GET',
        '/v1/measurements/aggregate?type=stress&bucket=1d&from=2024-06-09T00:00:00Z&to=2024-06-11T00:00:00Z',
      )
      t.match(days.body.data, [{ date: '2024-06-09' }, { date: '2024-06-10', start: dayStart }], `${timeZone} days`)
      t.equal(
        days.body.data.reduce((n: number, b: { count: number }) => n + b.count, 0),
        24 * 60,
      )
    }
  })

  t.test('America/New_York: the repeated 01:00 hour of a fall-back is two buckets', async (t) => {
    const { headers, call } = await userWithToken(app, { timeZone: 'America/New_York' })
    await ingest(
      app,
      headers,
      series('heart_rate', '2024-11-03T04:00:00Z', 12, () => 60, QUARTER),
    )
    const hours = await call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=2024-11-03T04:00:00Z&to=2024-11-03T07:00:00Z',
    )
    t.same(
      hours.body.data.map((b: { start: string; end: string }) => [b.start, b.end]),
      [
        ['2024-11-03T04:00:00.000Z', '2024-11-03T05:00:00.000Z'],
        ['2024-11-03T05:00:00.000Z', '2024-11-03T06:00:00.000Z'],
        ['2024-11-03T06:00:00.000Z', '2024-11-03T07:00:00.000Z'],
      ],
    )
  })
})
