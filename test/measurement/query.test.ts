import type { Test } from 'tap'
import t from 'tap'
import { createMeasurementRepository, exportRows } from '../../routes/measurement/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest, series, stats } from '../helpers/measurement.ts'

const T0 = Date.parse('2024-05-10T10:00:00Z')
// 3 hours of 1 Hz heart rate with a value pattern that is not uniform within a minute, minus a gap.
const HR = series('heart_rate', T0, 3 * 3600, (i) => 50 + ((i * 7919) % 97) + (i % 3) * 0.5).filter(
  (_, i) => i < 4000 || i > 4500,
)

function expected(samples: Sample[], from: number, to: number, bucketMs: number) {
  const groups = new Map<number, number[]>()
  for (const s of samples) {
    const at = Date.parse(s.timestamp)
    if (at < from || at >= to) continue
    const start = Math.floor(at / bucketMs) * bucketMs
    groups.set(start, [...(groups.get(start) ?? []), s.value])
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([start, values]) => ({
      start: new Date(start).toISOString(),
      end: new Date(start + bucketMs).toISOString(),
      ...stats(values),
    }))
}

function close(t: Test, actual: Array<Record<string, unknown>>, want: Array<Record<string, unknown>>, what: string) {
  t.equal(actual.length, want.length, `${what}: bucket count`)
  const round = (rows: Array<Record<string, unknown>>) =>
    rows.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v])),
    )
  t.same(round(actual), round(want), what)
}

t.test('queries', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  for (let i = 0; i < HR.length; i += 5000) await ingest(app, alice.headers, HR.slice(i, i + 5000))
  // Two devices at the same timestamps: the page order must break the tie.
  const steps = series('steps', T0, 30, (i) => i)
  await ingest(app, alice.headers, steps, 'left')
  await ingest(
    app,
    alice.headers,
    steps.map((s) => ({ ...s, value: s.value + 100 })),
    'right',
  )
  await ingest(app, alice.headers, steps.slice(0, 5))
  await ingest(
    app,
    bob.headers,
    series('heart_rate', T0, 600, () => 200),
  )

  t.test('pages of raw samples have no gaps or repeats', async (t) => {
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = `/v1/measurements?type=steps&limit=7${cursor ? `&cursor=${cursor}` : ''}`
      const { status, body } = await alice.call('GET', url)
      t.equal(status, 200)
      t.ok(body.data.length <= 7)
      for (const s of body.data) seen.push(`${s.timestamp}|${s.device_id}|${s.value}`)
      cursor = body.next_cursor
      pages++
    } while (cursor)
    t.equal(pages, 10, '65 samples in pages of 7')
    t.equal(seen.length, 65)
    t.equal(new Set(seen).size, 65, 'no repeats')
    const sorted = [...seen].sort((a, b) =>
      (a.split('|')[0] + (a.split('|')[1] === 'null' ? '' : a.split('|')[1])).localeCompare(
        b.split('|')[0] + (b.split('|')[1] === 'null' ? '' : b.split('|')[1]),
      ),
    )
    t.same(seen, sorted, 'time order, then device')
    const first = (await alice.call('GET', '/v1/measurements?type=steps&limit=3')).body.data
    t.same(first, [
      { type: 'steps', timestamp: '2024-05-10T10:00:00.000Z', value: 0, device_id: null },
      { type: 'steps', timestamp: '2024-05-10T10:00:00.000Z', value: 0, device_id: 'left' },
      { type: 'steps', timestamp: '2024-05-10T10:00:00.000Z', value: 100, device_id: 'right' },
    ])
    const ranged = await alice.call(
      'GET',
      '/v1/measurements?type=heart_rate&from=2024-05-10T10:00:10Z&to=2024-05-10T10:00:20Z',
    )
    t.same(
      ranged.body.data.map((s: Sample) => s.value),
      HR.slice(10, 20).map((s) => s.value),
      'from inclusive, to exclusive',
    )
    t.equal(ranged.body.next_cursor, null)
    const bad = await alice.call('GET', '/v1/measurements?type=steps&cursor=nonsense')
    t.match(bad, { status: 400, body: { error: 'validation_failed', details: [{ field: 'query.cursor' }] } })
    const badRange = await alice.call(
      'GET',
      '/v1/measurements?type=steps&from=2024-05-10T11:00:00Z&to=2024-05-10T10:00:00Z',
    )
    t.match(badRange, { status: 400, body: { error: 'validation_failed' } })
  })

  t.test('buckets match values computed here, also for ranges off the minute', async (t) => {
    const from = T0 + 17_500
    const to = T0 + 3 * 3600_000 - 42_250
    const q = (bucket: string) =>
      `/v1/measurements/aggregate?type=heart_rate&bucket=${bucket}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`
    for (const [bucket, ms] of [
      ['1m', 60_000],
      ['5m', 300_000],
      ['15m', 900_000],
      ['1h', 3600_000],
    ] as const) {
      const { status, body } = await alice.call('GET', q(bucket))
      t.equal(status, 200)
      t.match(body, { type: 'heart_rate', bucket, time_zone: 'UTC', unit: 'bpm' })
      close(t, body.data, expected(HR, from, to, ms), bucket)
    }
    const day = await alice.call('GET', q('1d'))
    close(
      t,
      day.body.data,
      expected(HR, from, to, 86400_000).map((b) => ({ ...b, date: '2024-05-10' })),
      '1d',
    )
    const tiny = await alice.call(
      'GET',
      `/v1/measurements/aggregate?type=heart_rate&bucket=1m&from=${new Date(T0 + 5_000).toISOString()}&to=${new Date(T0 + 9_000).toISOString()}`,
    )
    close(t, tiny.body.data, [{ ...expected(HR, T0 + 5000, T0 + 9000, 60_000)[0] }], 'range inside one minute')
    const tooMany = await alice.call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1m&from=2024-01-01T00:00:00Z&to=2024-02-01T00:00:00Z',
    )
    t.match(tooMany, { status: 400, body: { error: 'range_too_large' } })
  })

  t.test('deleting a range keeps aggregates exact', async (t) => {
    const from = T0 + 600_500
    const to = T0 + 1_800_250
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/measurements?type=heart_rate&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
      headers: alice.headers,
    })
    const left = HR.filter((s) => Date.parse(s.timestamp) < from || Date.parse(s.timestamp) >= to)
    t.same(res.json(), { deleted: HR.length - left.length })
    const all = `from=${new Date(T0).toISOString()}&to=${new Date(T0 + 4 * 3600_000).toISOString()}`
    for (const [bucket, ms] of [
      ['1m', 60_000],
      ['1h', 3600_000],
    ] as const) {
      const { body } = await alice.call('GET', `/v1/measurements/aggregate?type=heart_rate&bucket=${bucket}&${all}`)
      close(t, body.data, expected(left, T0, T0 + 4 * 3600_000, ms), `after delete, ${bucket}`)
    }
    // Re-sending the deleted samples brings them back, and the rollup with them.
    const back = HR.filter((s) => !left.includes(s))
    t.same(await ingest(app, alice.headers, [...back, ...left.slice(0, 100)]), {
      accepted: back.length,
      duplicates: 100,
    })
    const { body } = await alice.call('GET', `/v1/measurements/aggregate?type=heart_rate&bucket=1h&${all}`)
    close(t, body.data, expected(HR, T0, T0 + 4 * 3600_000, 3600_000), 'after re-sending')
    const none = await app.inject({
      method: 'DELETE',
      url: '/v1/measurements?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z',
      headers: alice.headers,
    })
    t.same(none.json(), { deleted: 0 })
  })

  t.test('window summaries for other domains read rollups and edges', async (t) => {
    const repo = createMeasurementRepository(app.db)
    const from = T0 + 12_345
    const to = T0 + 7_200_000 + 999
    const summary = await repo.windowSummary(alice.user.id, new Date(from), new Date(to))
    const hr = stats(
      HR.filter((s) => Date.parse(s.timestamp) >= from && Date.parse(s.timestamp) < to).map((s) => s.value),
    )
    t.same(Object.keys(summary).sort(), ['heart_rate', 'steps'])
    t.equal(summary.heart_rate?.count, hr.count)
    t.ok(Math.abs((summary.heart_rate?.avg ?? 0) - hr.avg) < 1e-9)
    t.equal(summary.heart_rate?.min, hr.min)
    t.equal(summary.heart_rate?.max, hr.max)
    // Steps at seconds 13..29 from two devices (the device-less ones end at second 4).
    t.same(summary.steps, { count: 34, avg: 2414 / 34, min: 13, max: 129, sum: 2414 })
    t.same(await repo.windowSummary(bob.user.id, new Date(T0 + 1100), new Date(T0 + 1500)), {}, 'nothing in a gap')
  })

  t.test('export streams every sample of the user', async (t) => {
    let n = 0
    let first: unknown
    for await (const row of exportRows(app.db, alice.user.id, 1000)) {
      first ??= row
      n++
    }
    t.equal(n, HR.length + 65)
    t.same(first, { type: 'heart_rate', timestamp: '2024-05-10T10:00:00.000Z', device_id: null, value: HR[0].value })
  })

  t.test("another user's data is never visible or deletable", async (t) => {
    const page = await bob.call('GET', '/v1/measurements?type=steps')
    t.same(page.body, { data: [], next_cursor: null })
    const hr = await bob.call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=2024-05-10T00:00:00Z&to=2024-05-11T00:00:00Z',
    )
    t.match(hr.body.data, [{ count: 600, min: 200, max: 200 }])
    const del = await app.inject({
      method: 'DELETE',
      url: '/v1/measurements?from=2024-05-10T00:00:00Z&to=2024-05-11T00:00:00Z',
      headers: bob.headers,
    })
    t.same(del.json(), { deleted: 600 })
    const still = await alice.call('GET', '/v1/measurements?type=steps&limit=1000')
    t.equal(still.body.data.length, 65, "alice's data untouched")
    // A cursor from alice's pages gives bob nothing of hers.
    const alicePage = await alice.call('GET', '/v1/measurements?type=steps&limit=2')
    const bobPage = await bob.call('GET', `/v1/measurements?type=steps&cursor=${alicePage.body.next_cursor}`)
    t.same(bobPage.body, { data: [], next_cursor: null })
  })
})
