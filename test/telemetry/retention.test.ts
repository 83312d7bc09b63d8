import { sql } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { telemetryLogs, telemetryMetricPoints, telemetrySpans } from '../../db/schema/index.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { RETENTION_LOCK_ID, createTelemetryRepository, exportRows } from '../../routes/telemetry/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { jsonSpan, logsBody, metricsBody, ns, tracesBody } from '../helpers/telemetry.ts'

async function send(app: Awaited<ReturnType<typeof buildTestApp>>, headers: Record<string, string>, tag: string) {
  const now = new Date()
  for (const [url, payload] of [
    ['/v1/telemetry/traces', tracesBody([jsonSpan({ name: tag }), jsonSpan({ name: tag })])],
    [
      '/v1/telemetry/metrics',
      metricsBody([{ name: tag, gauge: { dataPoints: [{ timeUnixNano: ns(now), asInt: 1 }] } }]),
    ],
    ['/v1/telemetry/logs', logsBody([{ timeUnixNano: ns(now), body: { stringValue: tag } }])],
  ] as const) {
    const res = await app.inject({ method: 'POST', url, headers, payload })
    if (res.statusCode !== 200 || res.body !== '{}') throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  }
}

const count = async (app: Awaited<ReturnType<typeof buildTestApp>>) => {
  const [row] = await queryRows<{ spans: number; points: number; logs: number }>(
    app.db,
    sql`select (select count(*)::int from telemetry_spans) as spans,
               (select count(*)::int from telemetry_metric_points) as points,
               (select count(*)::int from telemetry_logs) as logs`,
  )
  return row
}

t.test('retention removes only rows stored longer ago than TELEMETRY_RETENTION_DAYS, in batches', async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const app = await buildTestApp(t, { database })
  const { headers } = await userWithToken(app)
  await send(app, headers, 'old')
  // Stored 31 days ago (the event times inside do not matter: retention counts from reception).
  for (const table of [telemetrySpans, telemetryMetricPoints, telemetryLogs]) {
    await app.db.update(table).set({ receivedAt: sql`now() - interval '31 days'` })
  }
  await send(app, headers, 'recent')
  for (const table of [telemetrySpans, telemetryMetricPoints, telemetryLogs]) {
    // One day short of the limit: kept.
    await app.db
      .update(table)
      .set({ receivedAt: sql`now() - interval '29 days'` })
      .where(sql`${table.receivedAt} > now() - interval '1 day'`)
  }
  t.same(await count(app), { spans: 4, points: 2, logs: 2 })

  const repo = createTelemetryRepository(app.db)

  if (database.kind === 'postgres') {
    // Another process is purging: this run steps aside and deletes nothing.
    const other = new pg.Client({ connectionString: (database as { url?: string }).url })
    await other.connect()
    await other.query('begin')
    await other.query('select pg_advisory_xact_lock($1)', [RETENTION_LOCK_ID])
    t.equal(await repo.purgeExpired(30, 1), null)
    await other.query('rollback')
    await other.end()
    t.same(await count(app), { spans: 4, points: 2, logs: 2 })
  }

  // Batches of one row: the loop must go on until nothing old is left.
  t.same(await repo.purgeExpired(30, 1), { spans: 2, metric_points: 1, logs: 1 })
  t.same(await count(app), { spans: 2, points: 1, logs: 1 })
  const left = await app.db.select({ name: telemetrySpans.name }).from(telemetrySpans)
  t.same(
    left.map((r) => r.name),
    ['recent', 'recent'],
  )
  t.same(await repo.purgeExpired(30), { spans: 0, metric_points: 0, logs: 0 }, 'a second run finds nothing')
  t.same(await repo.purgeExpired(7), { spans: 2, metric_points: 1, logs: 1 }, 'a shorter retention')
})

t.test("a user's telemetry: exported for that user only, and deleted with the account", async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  await send(app, alice.headers, 'alice')
  await send(app, bob.headers, 'bob')

  const exported: Array<Record<string, unknown>> = []
  for await (const row of exportRows(app.db, alice.user.id)) exported.push(row)
  t.same(
    exported.map((r) => r.record_type),
    ['telemetry_span', 'telemetry_span', 'telemetry_metric_point', 'telemetry_log'],
  )
  t.ok(exported.every((r) => r.user_id === alice.user.id))
  t.match(exported[0], { name: 'alice', trace_id: /^[0-9a-f]{32}$/, service_name: 'nowatch-android' })
  t.match(exported[2], { name: 'alice', record_type: 'telemetry_metric_point', type: 'gauge', value: 1 })
  t.match(exported[3], { body: 'alice' })

  // No foreign key to users (Citus: distributed by their own key): the account deletion's step removes them.
  t.ok(await createAccountDeletionService(app).deleteAccount(alice.user.id))
  const rest = await app.db.select({ userId: telemetrySpans.userId }).from(telemetrySpans)
  t.same(
    rest.map((r) => r.userId),
    [bob.user.id, bob.user.id],
  )
  t.same(await count(app), { spans: 2, points: 1, logs: 1 })
})
