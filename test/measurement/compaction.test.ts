import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { createMeasurementRepository, exportRows } from '../../routes/measurement/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { byKey, counts, dataset, everySample, rounded, snapshot } from '../helpers/measurement-store.ts'
import { ingest, series, stats, upload } from '../helpers/measurement.ts'

// The compacted store behaves like the row table for every client-visible read: raw pages, every bucket size,
// statistics, sleep, window summaries and the export answer the same before and after compaction; re-sent
// samples stay duplicates, late samples and range deletes inside compacted hours stay exact.

const ROW_PATH = { MEASUREMENT_INGEST_BLOCKS: 'false' }

const T0 = Date.parse('2024-05-10T10:00:00Z')
const HOUR = 3600_000

t.test('compaction', async (t) => {
  // Compaction of the row table is under test: uploads go through it (direct-blocks.test.ts covers the other way).
  const app = await buildTestApp(t, { env: ROW_PATH })
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  const repo = createMeasurementRepository(app.db)
  const { hrA, hrB, temps, steps, stages } = dataset(T0)
  for (let i = 0; i < hrA.length; i += 5000) await ingest(app, alice.headers, hrA.slice(i, i + 5000), 'watch')
  await ingest(app, alice.headers, hrB, 'ring')
  await ingest(app, alice.headers, temps, 'watch')
  await ingest(app, alice.headers, steps)
  await ingest(app, alice.headers, stages, 'watch')
  await ingest(
    app,
    bob.headers,
    series('heart_rate', T0, 600, () => 200),
    'watch',
  )
  const all = [...hrA.map((s) => ({ ...s, device: 'watch' })), ...hrB.map((s) => ({ ...s, device: 'ring' }))].sort(
    byKey,
  )
  const before = await snapshot(alice, T0)
  const rawBefore = await everySample(alice, 'heart_rate', 10_000)
  const exportBefore: unknown[] = []
  for await (const r of exportRows(app.db, alice.user.id, 777)) exportBefore.push(r)
  const windowBefore = await repo.windowSummary(alice.user.id, new Date(T0 + 123_456), new Date(T0 + 2 * HOUR + 7_000))
  const vitalsWindows = [
    { start: T0 + 30_500, end: T0 + HOUR + 59_000 },
    { start: T0 + HOUR, end: T0 + 3 * HOUR },
  ]
  const vitalsBefore = await repo.windowMinuteStats(alice.user.id, ['heart_rate', 'skin_temperature'], vitalsWindows)

  t.test('moves closed hours into one block per type, device and hour', async (t) => {
    // The last hour stays open: only rows before T0 + 2 h move.
    const first = await compactMeasurements(app.db, { before: T0 + 2 * HOUR + 1234, wait: true })
    const c = await counts(app, alice.user.id)
    // heart rate on two devices, temperatures, steps: 4 series x 2 hours; stages: 4 hours before T0 + 2 h.
    t.equal(c.blocks, 8 + 4)
    t.equal(
      c.in_blocks + c.rows,
      hrA.length + hrB.length + temps.length + steps.length + stages.length,
      'no sample lost or doubled',
    )
    t.ok(c.rows > 0, 'the open hour stays in the row table')
    t.equal(first.users, 2)
    t.equal(first.samples, c.in_blocks + (await counts(app, bob.user.id)).in_blocks)
    const second = await compactMeasurements(app.db, { before: T0 + 3 * HOUR, wait: true })
    t.equal((await counts(app, alice.user.id)).rows, 0, 'everything compacted')
    t.ok(second.samples > 0)
    t.same(await compactMeasurements(app.db, { before: T0 + 3 * HOUR }), {
      users: 0,
      blocks: 0,
      samples: 0,
      skipped: 0,
    })
  })

  t.test('reads answer exactly what they answered from the rows', async (t) => {
    t.ok((before.sleep as { data: unknown[] }).data.length > 0, 'the night is a sleep session')
    t.same(await snapshot(alice, T0), before, 'aggregates of every bucket size, statistics, sleep')
    t.same(await everySample(alice, 'heart_rate', 10_000), rawBefore, 'raw samples, 10,000 a page')
    t.same(
      await everySample(alice, 'heart_rate', 997),
      all.map((s) => ({ ...s })),
      'raw samples in pages that end inside blocks equal the samples sent',
    )
    const exported: unknown[] = []
    for await (const r of exportRows(app.db, alice.user.id, 777)) exported.push(r)
    t.same(exported, exportBefore, 'the export')
    // Sums of floats added in another order may differ in the last bits.
    t.same(
      rounded(await repo.windowSummary(alice.user.id, new Date(T0 + 123_456), new Date(T0 + 2 * HOUR + 7_000))),
      rounded(windowBefore),
      'activity summaries',
    )
    const vitals = await repo.windowMinuteStats(alice.user.id, ['heart_rate', 'skin_temperature'], vitalsWindows)
    t.same(rounded(vitals), rounded(vitalsBefore), 'sleep vitals (minute means)')
    t.same(await repo.extent(alice.user.id, 'heart_rate'), {
      first: T0,
      last: Math.max(Date.parse(hrA[hrA.length - 1].timestamp), Date.parse(hrB[hrB.length - 1].timestamp)),
    })
    t.equal(
      await repo.nextSampleAt(alice.user.id, 'heart_rate', new Date(T0 + 4000_500)),
      T0 + 4002_250,
      "the ring's next sample (the watch has a gap)",
    )
    t.equal(await repo.nextSampleAt(alice.user.id, 'heart_rate', new Date(T0 + 5 * HOUR)), null)
    const bobs = await everySample(bob, 'heart_rate', 10_000)
    t.equal(bobs.length, 600, "another user's blocks never mix in")
    t.ok(bobs.every((s) => s.value === 200))
  })

  t.test('a re-sent batch is all duplicates, also after compaction', async (t) => {
    const again = await ingest(app, alice.headers, hrA.slice(0, 5000), 'watch')
    t.same(again, { accepted: 0, duplicates: 5000 })
    const mixed = await ingest(app, alice.headers, [...hrB.slice(0, 10), ...hrB.slice(0, 10)], 'ring')
    t.same(mixed, { accepted: 0, duplicates: 20 })
    // The same timestamps from another device are other samples.
    t.same(await ingest(app, alice.headers, hrB.slice(0, 10), 'watch-2'), { accepted: 10, duplicates: 0 })
    t.same(await ingest(app, alice.headers, hrB.slice(0, 10), 'watch-2'), { accepted: 0, duplicates: 10 })
    await alice.call('GET', '/v1/measurements?type=heart_rate&limit=1') // reads still work
  })

  t.test('late samples into compacted hours count, merge and stay exact', async (t) => {
    const late = series('heart_rate', T0 + 500, 300, (i) => 120 + (i % 5), 2000)
    t.same(await ingest(app, alice.headers, late, 'watch'), { accepted: 300, duplicates: 0 })
    t.same(await ingest(app, alice.headers, late, 'watch'), { accepted: 0, duplicates: 300 }, 'late ones re-sent')
    const from = T0
    const to = T0 + 15 * 60_000
    const expected = [...hrA, ...hrB, ...hrB.slice(0, 10), ...late].filter(
      (s) => Date.parse(s.timestamp) >= from && Date.parse(s.timestamp) < to,
    )
    const agg = async () =>
      (
        await alice.call(
          'GET',
          `/v1/measurements/aggregate?type=heart_rate&bucket=15m&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
        )
      ).body.data
    const want = stats(expected.map((s) => s.value))
    t.match(await agg(), [{ count: want.count, min: want.min, max: want.max }])
    const rowsBefore = (await counts(app, alice.user.id)).rows
    t.equal(rowsBefore, 310, 'late samples wait in the row table')
    await compactMeasurements(app.db, { before: T0 + 3 * HOUR, wait: true })
    t.equal((await counts(app, alice.user.id)).rows, 0, 'and are merged into their blocks')
    t.match(await agg(), [{ count: want.count, min: want.min, max: want.max }])
    const page = await everySample(alice, 'heart_rate', 5000)
    t.equal(page.length, hrA.length + hrB.length + 10 + 300)
    t.same(page, [...page].sort(byKey), 'in key order')
    t.same(await ingest(app, alice.headers, late, 'watch'), { accepted: 0, duplicates: 300 }, 'duplicates once merged')
  })

  t.test('a range delete inside compacted hours is exact', async (t) => {
    const from = T0 + 600_500
    const to = T0 + HOUR + 1_800_250
    const stored = await everySample(alice, 'heart_rate', 10_000)
    const inRange = stored.filter((s) => Date.parse(s.timestamp) >= from && Date.parse(s.timestamp) < to)
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/measurements?type=heart_rate&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
      headers: alice.headers,
    })
    t.same(res.json(), { deleted: inRange.length })
    const left = stored.filter((s) => Date.parse(s.timestamp) < from || Date.parse(s.timestamp) >= to)
    t.same(await everySample(alice, 'heart_rate', 10_000), left)
    // Buckets computed here from what is left, at the delete's ragged edges too.
    const range = `from=${new Date(T0).toISOString()}&to=${new Date(T0 + 3 * HOUR).toISOString()}`
    for (const [bucket, ms] of [
      ['1m', 60_000],
      ['5m', 300_000],
      ['15m', 900_000],
      ['1h', HOUR],
    ] as const) {
      const groups = new Map<number, number[]>()
      for (const s of left) {
        const start = Math.floor(Date.parse(s.timestamp) / ms) * ms
        groups.set(start, [...(groups.get(start) ?? []), s.value])
      }
      const want = [...groups.entries()]
        .sort(([a], [b]) => a - b)
        .map(([start, values]) => {
          const x = stats(values)
          return {
            start: new Date(start).toISOString(),
            count: x.count,
            min: x.min,
            max: x.max,
            sum: Math.round(x.sum * 1e6),
          }
        })
      const got = (await alice.call('GET', `/v1/measurements/aggregate?type=heart_rate&bucket=${bucket}&${range}`)).body
        .data
      t.same(
        got.map((b: Record<string, number | string>) => ({
          start: b.start,
          count: b.count,
          min: b.min,
          max: b.max,
          sum: Math.round((b.sum as number) * 1e6),
        })),
        want,
        `${bucket} buckets after the delete`,
      )
    }
    const all = await app.inject({
      method: 'DELETE',
      url: `/v1/measurements?from=${new Date(T0 - 3 * HOUR).toISOString()}&to=${new Date(T0 + 4 * HOUR).toISOString()}`,
      headers: alice.headers,
    })
    t.equal(all.json().deleted, left.length + temps.length + steps.length + stages.length)
    t.same(await counts(app, alice.user.id), { rows: 0, blocks: 0, in_blocks: 0 })
    t.equal((await counts(app, bob.user.id)).in_blocks, 600, "bob's samples stay")
  })

  t.test('a bad batch stores nothing, also into compacted hours', async (t) => {
    const batch = [...hrA.slice(0, 100), { type: 'heart_rate', timestamp: new Date(T0).toISOString(), value: 9999 }]
    const res = await upload(app, alice.headers, batch, 'watch')
    t.equal(res.statusCode, 400)
    t.same(await counts(app, alice.user.id), { rows: 0, blocks: 0, in_blocks: 0 })
  })
})

t.test('concurrent compactions, ingests and deletes lose and double nothing', async (t) => {
  // Compaction of the row table is under test: uploads go through it (direct-blocks.test.ts covers the other way).
  const app = await buildTestApp(t, { env: ROW_PATH })
  const alice = await userWithToken(app)
  const hr = series('heart_rate', T0, 4 * 3600, (i) => 40 + (i % 100))
  for (let i = 0; i < hr.length; i += 10_000) await ingest(app, alice.headers, hr.slice(i, i + 10_000), 'w')
  const resend = async () => {
    let accepted = 0
    for (let i = 0; i < hr.length; i += 2000)
      accepted += (await ingest(app, alice.headers, hr.slice(i, i + 2000), 'w')).accepted
    return accepted
  }
  const [a, b, accepted] = await Promise.all([
    compactMeasurements(app.db, { before: T0 + 4 * HOUR }),
    compactMeasurements(app.db, { before: T0 + 4 * HOUR }),
    resend(),
  ])
  t.equal(accepted, 0, 're-sent samples stay duplicates while compaction runs')
  await compactMeasurements(app.db, { before: T0 + 4 * HOUR, wait: true })
  const c = await counts(app, alice.user.id)
  t.same(c, { rows: 0, blocks: 4, in_blocks: hr.length }, `compactions ${JSON.stringify([a, b])}`)
  // Deleting while compacting (late rows waiting) keeps the count exact.
  const late = series('heart_rate', T0 + 500, 1000, () => 99)
  await ingest(app, alice.headers, late, 'w')
  const [, del] = await Promise.all([
    compactMeasurements(app.db, { before: T0 + 4 * HOUR }),
    app.inject({
      method: 'DELETE',
      url: `/v1/measurements?from=${new Date(T0).toISOString()}&to=${new Date(T0 + HOUR).toISOString()}`,
      headers: alice.headers,
    }),
  ])
  t.same(del.json(), { deleted: 3600 + 1000 })
  await compactMeasurements(app.db, { before: T0 + 4 * HOUR, wait: true })
  t.same(await counts(app, alice.user.id), { rows: 0, blocks: 3, in_blocks: 3 * 3600 })
  const daily = await alice.call('GET', '/v1/statistics/daily?from=2024-05-10&to=2024-05-10')
  const leftValues = hr.slice(3600).map((s) => s.value)
  t.match(daily.body.data[0], { heart_rate_min: Math.min(...leftValues), heart_rate_max: Math.max(...leftValues) })

  // Deleting the account removes its blocks and rollup with it.
  await app.db.execute(sql`delete from users where id = ${alice.user.id}`)
  t.same(await counts(app, alice.user.id), { rows: 0, blocks: 0, in_blocks: 0 })
})
