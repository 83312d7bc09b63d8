import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { ensurePartitions, monthOf, partitionName } from '../../routes/measurement/partitions.ts'
import { createMeasurementRepository } from '../../routes/measurement/repository.ts'
import { applyRawRetention, parseRawRetention } from '../../routes/measurement/retention.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series, stats } from '../helpers/measurement.ts'

const HOUR = 3600_000
const DAY = 24 * HOUR
// Whole hours, so that the samples' quarter-hours and hours are whole too.
const NOW = Math.floor(Date.now() / HOUR) * HOUR

t.test('the setting', async (t) => {
  t.same(parseRawRetention(''), {})
  t.same(parseRawRetention('heart_rate=30,steps=365'), { heart_rate: 30, steps: 365 })
  t.equal(parseRawRetention('heart_rate=7,*=90').heart_rate, 7, 'a listed type keeps its own')
  t.equal(parseRawRetention('*=90').sleep_stage, 90)
  t.throws(() => parseRawRetention('pulse=3'), /unknown type pulse/)
  t.throws(() => parseRawRetention('heart_rate=0'), /whole days/)
})

t.test('past a type retention only the rollup stays, exactly', async (t) => {
  const app = await buildTestApp(t, { env: { MEASUREMENT_RAW_RETENTION: 'heart_rate=2' } })
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  const old = series('heart_rate', NOW - 5 * DAY, 3600, (i) => 50 + (i % 40))
  const recent = series('heart_rate', NOW - 3 * HOUR, 600, () => 70)
  const oldSteps = series('steps', NOW - 5 * DAY, 60, (i) => i, 60_000)
  // Stored before the setting was turned on (the route now ignores samples past the horizon): the repository.
  const repo = createMeasurementRepository(app.db)
  const rows = old.map((s) => ({ type: 'heart_rate' as const, at: Date.parse(s.timestamp), value: s.value }))
  await ensurePartitions(
    app.db,
    'measurements',
    rows.map((r) => r.at),
  )
  for (const u of [alice, bob]) await app.db.transaction((tx) => repo.ingest(u.user.id, 'watch', rows, tx))
  await ingest(app, alice.headers, recent, 'watch')
  await ingest(app, alice.headers, oldSteps)
  await compactMeasurements(app.db, { before: NOW - 2 * HOUR, wait: true })
  const range = `from=${new Date(NOW - 5 * DAY).toISOString()}&to=${new Date(NOW - 5 * DAY + HOUR).toISOString()}`
  const hourly = `/v1/measurements/aggregate?type=heart_rate&bucket=15m&${range}`
  const before = (await alice.call('GET', hourly)).body.data
  t.equal(before.length, 4)

  const removed = await applyRawRetention(app.db, parseRawRetention('heart_rate=2'))
  t.same(removed, { samples: 2 * old.length, droppedPartitions: 0 }, "alice's and bob's old heart rate")
  t.same((await alice.call('GET', `/v1/measurements?type=heart_rate&${range}`)).body.data, [])
  t.same((await alice.call('GET', hourly)).body.data, before, 'the rollup answers as before')
  t.equal(
    (await alice.call('GET', `/v1/measurements?type=steps&${range}`)).body.data.length,
    60,
    'other types keep their raw samples',
  )
  t.equal((await alice.call('GET', '/v1/measurements?type=heart_rate&limit=10000')).body.data.length, 600)

  // A re-sent old batch cannot be told from a new one any more: ignored, so the rollup does not count it twice.
  t.same(await ingest(app, alice.headers, old.slice(0, 100), 'watch'), { accepted: 0, duplicates: 100 })
  t.same((await alice.call('GET', hourly)).body.data, before)

  // Deleting inside the expired part removes the rollup of those quarter-hours (whole ones at the edges).
  const del = await app.inject({
    method: 'DELETE',
    url: `/v1/measurements?type=heart_rate&from=${new Date(NOW - 5 * DAY + 20 * 60_000).toISOString()}&to=${new Date(NOW - 5 * DAY + 40 * 60_000).toISOString()}`,
    headers: alice.headers,
  })
  const cut = old.filter((s) => {
    const at = Date.parse(s.timestamp)
    return at >= NOW - 5 * DAY + 15 * 60_000 && at < NOW - 5 * DAY + 45 * 60_000
  })
  t.same(del.json(), { deleted: cut.length }, 'the two quarter-hours the range touches, counted')
  const after = (await alice.call('GET', hourly)).body.data
  t.same(
    after.map((b: { start: string }) => b.start),
    [before[0].start, before[3].start],
  )
  t.same((await bob.call('GET', hourly)).body.data, before, "bob's rollup is his own")
})

t.test('when every type has a retention, whole months go with their partitions', async (t) => {
  const app = await buildTestApp(t, { env: { MEASUREMENT_RAW_RETENTION: '*=40' } })
  const alice = await userWithToken(app)
  const at = NOW - 80 * DAY
  const old = series('heart_rate', at, 120, () => 60)
  // Ingest through the repository's route would ignore them (past 40 days): another app without retention writes.
  const writer = await buildTestApp(t)
  const w = await userWithToken(writer)
  await ingest(writer, w.headers, old, 'watch')
  const partition = partitionName('measurements', monthOf(at))
  const present = async (name: string) =>
    (await queryRows<{ p: boolean }>(writer.db, sql`select to_regclass(${name}) is not null as p`))[0].p
  t.ok(await present(partition))
  const dropped = await applyRawRetention(writer.db, parseRawRetention('*=40'))
  t.ok(dropped.droppedPartitions >= 1, `dropped ${dropped.droppedPartitions}`)
  t.notOk(await present(partition), 'the month older than every horizon is gone')
  t.ok(await present(partitionName('measurements', monthOf(NOW))), 'the current month stays')
  const q = (await w.call('GET', '/v1/measurements?type=heart_rate')).body.data
  t.same(q, [], 'its samples with it')
  t.same(
    (
      await w.call(
        'GET',
        `/v1/measurements/aggregate?type=heart_rate&bucket=1d&from=${new Date(at - DAY).toISOString()}&to=${new Date(at + DAY).toISOString()}`,
      )
    ).body.data.map((b: { count: number }) => b.count),
    [stats(old.map((s) => s.value)).count],
    'the rollup stays',
  )
  // On the app with the setting, an upload into such a month is ignored, not an error.
  t.same(await ingest(app, alice.headers, old, 'watch'), { accepted: 0, duplicates: old.length })
})
