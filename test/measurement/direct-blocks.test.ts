import { sql } from 'drizzle-orm'
import fc from 'fast-check'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { exportRows } from '../../routes/measurement/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { byKey, counts, dataset, everySample, quarters, rounded, snapshot } from '../helpers/measurement-store.ts'
import { type Sample, ingest, series, upload } from '../helpers/measurement.ts'

// Issue 23's stretch: an upload's samples of closed hours (ended MEASUREMENT_COMPACTION_DELAY_S ago) go straight
// into blocks (routes/measurement/direct-blocks.ts). Two servers on one database, one writing blocks, one the row
// table (MEASUREMENT_INGEST_BLOCKS=false, as before): the same samples must read the same everywhere, re-sends stay
// duplicates across batch edges, hours that already hold rows keep them, and concurrent uploads store each sample once.

const T0 = Date.parse('2024-05-10T10:00:00Z')
const HOUR = 3600_000

/** A snapshot without the ids of sleep sessions (derived from the user's id, so they differ between users). */
const withoutIds = (x: unknown) =>
  JSON.parse(JSON.stringify(x, (k, v) => (k === 'id' || k === 'main_session_id' ? undefined : v)))

/** Uploads in batches of `size`, so that batches begin and end inside hours. */
async function ingestInBatches(
  app: Parameters<typeof ingest>[0],
  headers: Record<string, string>,
  samples: Sample[],
  size: number,
  deviceId?: string,
) {
  const total = { accepted: 0, duplicates: 0 }
  for (let i = 0; i < samples.length; i += size) {
    const r = await ingest(app, headers, samples.slice(i, i + size), deviceId)
    total.accepted += r.accepted
    total.duplicates += r.duplicates
  }
  return total
}

t.test('closed hours straight into blocks', async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const blocks = await buildTestApp(t, { database })
  const rows = await buildTestApp(t, { database, env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const alice = await userWithToken(blocks)
  const bob = await userWithToken(rows)
  const { hrA, hrB, temps, steps, stages } = dataset(T0)
  for (const [app, u] of [
    [blocks, alice],
    [rows, bob],
  ] as const) {
    t.same(await ingestInBatches(app, u.headers, hrA, 3001, 'watch'), { accepted: hrA.length, duplicates: 0 })
    await ingest(app, u.headers, hrB, 'ring')
    await ingest(app, u.headers, temps, 'watch')
    await ingest(app, u.headers, steps)
    await ingest(app, u.headers, stages, 'watch')
  }
  const total = hrA.length + hrB.length + temps.length + steps.length + stages.length

  t.test('a backlog is stored as blocks and reads as the row table does', async (t) => {
    const a = await counts(blocks, alice.user.id)
    t.same({ rows: a.rows, in_blocks: a.in_blocks }, { rows: 0, in_blocks: total }, 'no row: every hour is closed')
    t.equal(a.blocks, 3 + 3 + 3 + 3 + 5, 'one block per type, device and hour (stages: 5 hours)')
    t.same(await counts(rows, bob.user.id), { rows: total, blocks: 0, in_blocks: 0 }, 'the other server: rows')
    t.same(
      withoutIds(await snapshot(alice, T0)),
      withoutIds(await snapshot(bob, T0)),
      'aggregates of every bucket size, statistics, sleep',
    )
    for (const type of ['heart_rate', 'skin_temperature', 'steps', 'sleep_stage']) {
      t.same(await everySample(alice, type, 997), await everySample(bob, type, 997), `raw ${type}, pages of 997`)
    }
    const all = [...hrA.map((s) => ({ ...s, device: 'watch' })), ...hrB.map((s) => ({ ...s, device: 'ring' }))]
    t.same(await everySample(alice, 'heart_rate', 10_000), all.sort(byKey), 'the samples sent, bit for bit')
    const exported = async (userId: string) => {
      const out: unknown[] = []
      for await (const r of exportRows(blocks.db, userId, 500)) out.push(r)
      return out
    }
    t.same(await exported(alice.user.id), await exported(bob.user.id), 'the export')
    // The rollup computed in the server equals the database's: every column of every quarter-hour.
    const mine = await quarters(blocks, alice.user.id)
    t.equal(mine.length, (await quarters(blocks, bob.user.id)).length)
    // Sums of floats added in another order may differ in the last bits.
    t.same(rounded(mine), rounded(await quarters(blocks, bob.user.id)), 'measurement_quarters, column by column')
  })

  t.test('re-sent, overlapping and repeated samples are duplicates', async (t) => {
    t.same(await ingestInBatches(blocks, alice.headers, hrA, 2500, 'watch'), { accepted: 0, duplicates: hrA.length })
    const log = async () =>
      (
        await queryRows<{ n: number }>(
          blocks.db,
          sql`select count(*)::int as n from change_log where user_id = ${alice.user.id}`,
        )
      )[0].n
    const logged = await log()
    t.same(await ingest(blocks, alice.headers, hrB, 'ring'), { accepted: 0, duplicates: hrB.length })
    t.equal(await log(), logged, 'a batch of duplicates records no change')
    // The hour after the data: half of it re-sent, half new, and every new sample twice in the batch.
    const more = series('heart_rate', T0 + 3 * HOUR - 1800_000, 3600, (i) => 70 + (i % 9))
    const fresh = more.slice(1800)
    t.same(await ingest(blocks, alice.headers, [...more, ...fresh], 'watch'), {
      accepted: 1800,
      duplicates: 1800 + 1800,
    })
    t.equal(await log(), logged + 1, 'one change entry for the batch')
    t.same(await ingest(rows, bob.headers, [...more, ...fresh], 'watch'), { accepted: 1800, duplicates: 3600 })
    t.same(await everySample(alice, 'heart_rate', 10_000), await everySample(bob, 'heart_rate', 10_000))
    t.same((await counts(blocks, alice.user.id)).rows, 0, 'the rest of an hour merges into its block')
    // The same timestamps from another device, or of another user, are other samples.
    t.same(await ingest(blocks, alice.headers, fresh, 'band'), { accepted: 1800, duplicates: 0 })
    t.same(await ingest(rows, bob.headers, fresh, 'band'), { accepted: 1800, duplicates: 0 })
    const carol = await userWithToken(blocks)
    t.same(await ingestInBatches(blocks, carol.headers, hrA, 5000, 'watch'), { accepted: hrA.length, duplicates: 0 })
    t.equal((await counts(blocks, alice.user.id)).in_blocks, total + 1800 + 1800, "another user's upload is his own")
  })

  t.test('an hour that already holds rows keeps to the row table', async (t) => {
    const dave = await userWithToken(blocks)
    const hour = T0 + 10 * HOUR
    const live = series('heart_rate', hour, 600, (i) => 50 + (i % 4))
    const full = series('heart_rate', hour, 3600, (i) => 50 + (i % 4))
    t.same(await ingest(rows, dave.headers, live, 'watch'), { accepted: 600, duplicates: 0 })
    t.same(await ingest(blocks, dave.headers, full, 'watch'), { accepted: 3000, duplicates: 600 })
    t.same(await counts(blocks, dave.user.id), { rows: 3600, blocks: 0, in_blocks: 0 })
    // The next hour in the same batch had nothing: it is a block.
    const next = series('heart_rate', hour + HOUR, 3600, (i) => 60 + (i % 4))
    t.same(await ingest(blocks, dave.headers, [...full, ...next], 'watch'), { accepted: 3600, duplicates: 3600 })
    t.same(await counts(blocks, dave.user.id), { rows: 3600, blocks: 1, in_blocks: 3600 })
    await compactMeasurements(blocks.db, { before: hour + 2 * HOUR, wait: true })
    t.same(await counts(blocks, dave.user.id), { rows: 0, blocks: 2, in_blocks: 7200 }, 'compaction takes the rest')
    const agg = await dave.call(
      'GET',
      `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${new Date(hour).toISOString()}&to=${new Date(hour + 2 * HOUR).toISOString()}`,
    )
    t.match(agg.body.data, [
      { count: 3600, min: 50, max: 53 },
      { count: 3600, min: 60, max: 63 },
    ])
  })

  t.test('the open hours stay in the row table', async (t) => {
    const erin = await userWithToken(blocks)
    const now = Date.now()
    const recent = series('heart_rate', now - 5 * 60_000, 120, () => 61)
    const old = series('heart_rate', now - 3 * HOUR, 120, () => 62)
    t.same(await ingest(blocks, erin.headers, [...recent, ...old], 'watch'), { accepted: 240, duplicates: 0 })
    const c = await counts(blocks, erin.user.id)
    t.equal(c.rows, 120, 'the last hour (and the one MEASUREMENT_COMPACTION_DELAY_S covers) as rows')
    t.equal(c.in_blocks, 120, 'the hour three hours ago as a block')
  })

  t.test('concurrent overlapping uploads store each sample once', async (t) => {
    const frank = await userWithToken(blocks)
    const span = series('heart_rate', T0, 4 * 3600, (i) => 40 + (i % 100))
    const parts = [span.slice(0, 8000), span.slice(5000, 12_000), span.slice(4400, 14_400), span.slice(0, 10_000)]
    const results = await Promise.all(parts.map((p) => ingest(blocks, frank.headers, p, 'watch')))
    t.equal(
      results.reduce((n, r) => n + r.accepted, 0),
      span.length,
      'accepted adds up to the samples',
    )
    t.same(await counts(blocks, frank.user.id), { rows: 0, blocks: 4, in_blocks: span.length })
    const [q] = await queryRows<{ n: number }>(
      blocks.db,
      sql`select sum(count)::int as n from measurement_quarters where user_id = ${frank.user.id}`,
    )
    t.equal(q.n, span.length, 'the rollup counts each once')
  })

  t.test('a range delete inside blocks written at ingest is exact', async (t) => {
    const from = T0 + 1800_500
    const to = T0 + HOUR + 600_000
    const res = await alice.call(
      'DELETE',
      `/v1/measurements?type=heart_rate&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
    )
    const resB = await bob.call(
      'DELETE',
      `/v1/measurements?type=heart_rate&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
    )
    t.ok(res.body.deleted > 0)
    t.same(res.body, resB.body)
    t.same(withoutIds(await snapshot(alice, T0)), withoutIds(await snapshot(bob, T0)))
  })

  t.test('a bad batch stores nothing', async (t) => {
    const gina = await userWithToken(blocks)
    const batch = [...hrA.slice(0, 100), { type: 'heart_rate', timestamp: new Date(T0).toISOString(), value: 9999 }]
    const res = await upload(blocks, gina.headers, batch, 'watch')
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'validation_failed')
    t.same(await counts(blocks, gina.user.id), { rows: 0, blocks: 0, in_blocks: 0 })
  })
})

t.test('random batches read the same stored as blocks or as rows (property)', async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const blocks = await buildTestApp(t, { database })
  const rows = await buildTestApp(t, { database, env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const TYPES = ['heart_rate', 'skin_temperature', 'hrv_rmssd'] as const
  const value = {
    heart_rate: fc.integer({ min: 20, max: 250 }),
    skin_temperature: fc.integer({ min: 2000, max: 4500 }).map((n) => n / 100),
    hrv_rmssd: fc.double({ min: 1, max: 300, noNaN: true }),
  }
  // Samples over three hours (timestamps to the millisecond, some on hour and quarter edges); the batches repeat
  // some (within a batch and across batches, with other values: the first one stored counts).
  const sample = fc
    .record({
      type: fc.constantFrom(...TYPES),
      at: fc.oneof(
        fc.integer({ min: 0, max: 3 * HOUR - 1 }),
        fc.constantFrom(0, HOUR - 1, HOUR, 15 * 60_000, 45 * 60_000 - 1, 2 * HOUR + 5 * 60_000),
      ),
    })
    .chain(({ type, at }) => value[type].map((v) => ({ type, timestamp: new Date(T0 + at).toISOString(), value: v })))
  const batches = fc.array(fc.array(sample, { minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 4 })
  let runs = 0
  await fc.assert(
    fc.asyncProperty(batches, fc.constantFrom('watch', undefined), async (list, device) => {
      runs++
      const a = await userWithToken(blocks)
      const b = await userWithToken(rows)
      for (const batch of list) {
        const repeated = [
          ...batch,
          ...batch.slice(0, 3).map((s) => ({ ...s, value: s.type === 'heart_rate' ? 99 : s.value })),
        ]
        const [ra, rb] = [
          await ingest(blocks, a.headers, repeated, device),
          await ingest(rows, b.headers, repeated, device),
        ]
        if (ra.accepted !== rb.accepted || ra.duplicates !== rb.duplicates) return false
      }
      for (const type of TYPES) {
        if (JSON.stringify(await everySample(a, type, 400)) !== JSON.stringify(await everySample(b, type, 400)))
          return false
      }
      return (
        JSON.stringify(rounded(await quarters(blocks, a.user.id))) ===
        JSON.stringify(rounded(await quarters(blocks, b.user.id)))
      )
    }),
    { seed: 20_261_202, numRuns: 8 },
  )
  t.equal(runs >= 8, true, 'the property ran')
})
