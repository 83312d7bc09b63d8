import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { createTelemetryRepository } from '../../routes/telemetry/repository.ts'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'
import { hex } from '../helpers/telemetry.ts'

// Issue 21 (Citus): spans are keyed by their identity (trace_id, span_id), log records and metric points by their
// content hash, the columns Citus distributes them by; no foreign key to users. Rows stored before ingest was
// idempotent have no content hash: the upgrade gives each one of its own, so the primary key can be built.

const primaryKey = (db: Parameters<typeof queryRows>[0], table: string) =>
  queryRows<{ column_name: string }>(
    db,
    sql`select k.column_name from information_schema.table_constraints c
          join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
         where c.table_name = ${table} and c.constraint_type = 'PRIMARY KEY' order by k.ordinal_position`,
  ).then((rows) => rows.map((r) => r.column_name))

t.test('the upgrade keys telemetry by its identity, on a database with rows from before content hashes', async (t) => {
  const before = await databaseMigratedUpTo('_telemetry_content_hash_backfill')
  t.teardown(() => before.close())
  const db = before.db
  const userId = randomUUID()
  await db.execute(sql`
    insert into users (id, email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
    values (${userId}, ${`${userId}@example.com`}, 'x', 'A', 'B', now(), now())`)
  // Two equal log records stored twice before ingest was idempotent (null hash), one stored after (hashed).
  for (const hash of [null, null, 'f'.repeat(64)]) {
    await db.execute(sql`
      insert into telemetry_logs (time, severity_number, body, attributes, service_name, user_id, content_hash)
      values ('2026-11-30T10:00:00Z', 9, 'synced', '{}', 'nowatch-ios', ${userId}, ${hash})`)
  }
  await db.execute(sql`
    insert into telemetry_metric_points (name, type, time, value, attributes, service_name, user_id)
    values ('battery', 'gauge', '2026-11-30T10:00:00Z', 80, '{}', 'nowatch-ios', ${userId})`)
  const [traceId, spanId] = [hex(16), hex(8)]
  await db.execute(sql`
    insert into telemetry_spans (trace_id, span_id, name, kind, start_at, end_at, duration_ns, status_code, attributes,
                                 service_name, user_id)
    values (${traceId}, ${spanId}, 'sync', 1, '2026-11-30T10:00:00Z', '2026-11-30T10:00:01Z', 1000000000, 0, '{}',
            'nowatch-ios', ${userId})`)

  await before.migrateRest()

  const logs = await queryRows<{ content_hash: string }>(
    db,
    sql`select content_hash from telemetry_logs order by content_hash`,
  )
  t.equal(logs.length, 3, 'every log record stays, the two equal old ones too')
  t.equal(new Set(logs.map((r) => r.content_hash)).size, 3, 'each with a hash of its own')
  t.ok(
    logs.every((r) => /^[0-9a-f]{64}$/.test(r.content_hash)),
    'the old ones got a SHA-256 (of their id), like the hashes the server writes',
  )
  t.ok(
    logs.some((r) => r.content_hash === 'f'.repeat(64)),
    'a hash written by the server is kept',
  )
  const [point] = await queryRows<{ content_hash: string | null }>(
    db,
    sql`select content_hash from telemetry_metric_points`,
  )
  t.match(point.content_hash, /^[0-9a-f]{64}$/, 'the old metric point got one too')

  t.same(await primaryKey(db, 'telemetry_spans'), ['trace_id', 'span_id'], 'spans are keyed by their identity')
  t.same(await primaryKey(db, 'telemetry_logs'), ['content_hash'], 'log records by their content hash')
  t.same(await primaryKey(db, 'telemetry_metric_points'), ['content_hash'], 'metric points by their content hash')
  const toUsers = await queryRows<{ conname: string }>(
    db,
    sql`select con.conname from pg_constraint con join pg_class c on c.oid = con.conrelid
         where con.contype = 'f' and c.relname like 'telemetry_%' and con.confrelid = 'users'::regclass`,
  )
  t.same(toUsers, [], 'no foreign key from telemetry to users')

  // Ingest after the upgrade is still idempotent, on the new primary keys.
  const repo = createTelemetryRepository(db)
  const sender = { userId, clientId: null }
  const origin = { serviceName: 'nowatch-ios', serviceVersion: null, scopeName: null }
  const log = {
    ...origin,
    time: new Date('2026-11-30T10:00:00Z'),
    severityNumber: 9,
    severityText: null,
    body: 'synced',
    attributes: {},
    traceId: null,
    spanId: null,
  }
  for (let i = 0; i < 2; i++) {
    await db.transaction(async (tx) => {
      await repo.insertLogs([log], sender, tx)
      await repo.insertSpans(
        [
          {
            ...origin,
            traceId,
            spanId,
            parentSpanId: null,
            name: 'sync again',
            kind: 1,
            startAt: new Date('2026-11-30T10:00:00Z'),
            endAt: new Date('2026-11-30T10:00:01Z'),
            durationNs: 1e9,
            statusCode: 0,
            statusMessage: null,
            attributes: {},
            events: null,
          },
        ],
        sender,
        tx,
      )
    })
  }
  const [counts] = await queryRows<{ logs: number; spans: number; name: string }>(
    db,
    sql`select (select count(*)::int from telemetry_logs) as logs, (select count(*)::int from telemetry_spans) as spans,
               (select name from telemetry_spans) as name`,
  )
  t.same(
    counts,
    { logs: 4, spans: 1, name: 'sync' },
    'a new record is stored once however often it is sent; a span already stored by its identity is skipped',
  )
})
