import { sql } from 'drizzle-orm'
import type { Histogram } from 'prom-client'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series } from '../helpers/measurement.ts'

// Issue 23b: an upload is one statement after the user's lock (samples, rollup and change log together), sent with
// the lock in one round trip on PostgreSQL; only a batch meeting a compacted hour goes again, in a transaction,
// without the samples its blocks hold. What the statement writes
// must be what the separate statements wrote: the change log exactly when a sample was stored, the rollup
// counting each sample once.

const T0 = Date.parse('2024-06-03T10:00:00Z')

t.test('an upload: one round trip on PostgreSQL, more only where a compacted hour is met', async (t) => {
  // The session stays cached across each counted upload and the warm-up just before it.
  // The row path's statements are counted (closed hours straight into blocks: direct-blocks.test.ts).
  const app = await buildTestApp(t, { env: { SESSION_CACHE_TTL_MS: '10000', MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const postgres = app.database.via === 'postgres'
  const u = await userWithToken(app)
  const histogram = app.metrics.registry.getSingleMetric('db_query_duration_seconds') as Histogram
  const queries = async () => {
    const { values } = await histogram.get()
    return values.filter((v) => v.metricName === 'db_query_duration_seconds_count').reduce((a, v) => a + v.value, 0)
  }
  let warm = 0
  const statementsOf = async (work: () => Promise<unknown>) => {
    await ingest(
      app,
      u.headers,
      series('heart_rate', T0 - 86400_000 + ++warm * 1000, 1, () => 60),
      'watch',
    )
    const before = await queries()
    await work()
    return (await queries()) - before
  }
  const changes = () =>
    queryRows<{ action: string; range_type: string; range_count: number; range_from: string; range_to: string }>(
      app.db,
      sql`select action, range_type, range_count,
                 to_char(range_from at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as range_from,
                 to_char(range_to at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as range_to
            from change_log where user_id = ${u.user.id} order by seq`,
    )
  const hourCount = async (from: number) => {
    const res = await u.call(
      'GET',
      `/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=${new Date(from).toISOString()}&to=${new Date(from + 3600_000).toISOString()}`,
    )
    return res.body.data.reduce((n: number, b: { count: number }) => n + b.count, 0)
  }

  // Warm-up: the month's partitions are known.
  await ingest(
    app,
    u.headers,
    series('heart_rate', T0 - 86400_000, 1, () => 60),
    'watch',
  )
  const logged = () => changes().then((c) => c.length - 1 - warm)

  const minute = series('heart_rate', T0, 60, (i) => 60 + (i % 5))
  const fresh = await statementsOf(async () => {
    t.same(await ingest(app, u.headers, minute, 'watch'), { accepted: 60, duplicates: 0 })
  })
  // PostgreSQL: the lock and the statement in one round trip (db/pipelined.ts); PGlite: the two in its transaction
  // (whose BEGIN and COMMIT are not counted queries). Before issue 23b: BEGIN, the lock, a block lookup, the insert,
  // the change log's own statement, COMMIT.
  t.equal(fresh, postgres ? 1 : 2, `a new minute: ${fresh} round trips`)
  const after = await changes()
  t.equal(await logged(), 1, 'one change entry')
  t.match(after[after.length - 1], {
    action: 'created',
    range_type: 'heart_rate',
    range_count: 60,
    range_from: '2024-06-03T10:00:00.000Z',
    range_to: '2024-06-03T10:00:59.000Z',
  })

  t.same(await ingest(app, u.headers, minute, 'watch'), { accepted: 0, duplicates: 60 }, 're-sent: duplicates')
  t.equal(await logged(), 1, 'nothing stored, nothing logged')

  // The hour compacted: the same minute again meets a block (the fallback), and a late minute of that hour
  // alongside is stored once, logged once, counted once in the rollup.
  await compactMeasurements(app.db, { before: T0 + 2 * 3600_000, wait: true })
  const [{ n: blocks }] = await queryRows<{ n: number }>(
    app.db,
    sql`select count(*)::int as n from measurement_blocks where user_id = ${u.user.id}`,
  )
  t.ok(blocks >= 1, 'the hour is a block')
  const resent = await statementsOf(async () => {
    t.same(await ingest(app, u.headers, minute, 'watch'), { accepted: 0, duplicates: 60 }, 'still duplicates')
  })
  // The statement finds the block and writes nothing; then, in a transaction, the lock and the blocks' samples read
  // (nothing left to store). PostgreSQL: the first round trip, BEGIN, lock, lookup, COMMIT; PGlite: lock, statement, lookup.
  t.equal(resent, postgres ? 5 : 3, `a re-send into a compacted hour: ${resent} round trips`)
  t.equal(await logged(), 1, 'nothing logged for it')
  const late = series('heart_rate', T0 + 30 * 60_000, 30, () => 70)
  t.same(await ingest(app, u.headers, [...minute, ...late], 'watch'), { accepted: 30, duplicates: 60 })
  const last = await changes()
  t.equal(await logged(), 2)
  t.match(last[last.length - 1], { range_count: 90, range_from: '2024-06-03T10:00:00.000Z' })
  t.equal(await hourCount(T0), 90, 'the rollup counts each sample once')

  // Another device's samples at the same instants are not the compacted device's duplicates.
  t.same(await ingest(app, u.headers, minute, 'band'), { accepted: 60, duplicates: 0 })
  t.equal(await hourCount(T0), 150)
})
