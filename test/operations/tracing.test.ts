import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { buildTestApp } from '../helpers/app.ts'
import { createClient } from '../helpers/fixtures.ts'
import { startServer } from '../helpers/processes.ts'
import { seededDatabase } from '../helpers/seed.ts'

// The real server traced through the standard OTEL_* variables, exporting to a receiver that is
// this project's own OTLP route (/v1/telemetry/traces) on an app of the test's.
t.test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turns on traces of requests and queries', async (t) => {
  const receiver = await buildTestApp(t)
  await receiver.listen({ port: 0, host: '127.0.0.1' })
  const { port } = receiver.server.address() as { port: number }
  const client = await createClient(receiver, 'tracing receiver')

  const seeded = await seededDatabase([])
  t.teardown(() => seeded.close())
  const server = await startServer({
    ...seeded.env,
    JOBS_ENABLED: 'false',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/telemetry/traces`,
    OTEL_EXPORTER_OTLP_HEADERS: `x-auth-token=${encodeURIComponent(client.x_auth_token)}`,
    OTEL_SERVICE_NAME: 'nowatch-api-under-test',
  })
  t.teardown(() => server.stop())
  t.equal((await fetch(`${server.url}/readyz`)).status, 200)
  t.equal((await fetch(`${server.url}/v1/users/me`)).status, 401)
  // SIGTERM flushes the batch processor before exit.
  t.equal(await server.stop(), 0, server.output())

  const spans = await queryRows<{ name: string; attributes: Record<string, unknown>; service: string }>(
    receiver.db,
    sql`select name, attributes, service_name as service from telemetry_spans order by start_at`,
  )
  t.ok(spans.length > 0, `spans arrived (${spans.length})`)
  t.ok(
    spans.every((s) => s.service === 'nowatch-api-under-test'),
    'named by OTEL_SERVICE_NAME',
  )
  const routes = spans.map((s) => s.attributes['http.route']).filter(Boolean)
  t.ok(routes.includes('/readyz'), 'a request span per route, by pattern')
  t.ok(routes.includes('/v1/users/me'))
  if (process.env.DATABASE_URL) {
    const queries = spans.filter(
      (s) => s.attributes['db.system'] === 'postgresql' || s.attributes['db.system.name'] === 'postgresql',
    )
    t.ok(queries.length > 0, `PostgreSQL queries are spans too (${queries.length})`)
  } else {
    t.comment('pg query spans: PostgreSQL only (the embedded PGlite has no driver to instrument)')
  }
})

t.test('without OTEL_* variables nothing is traced', async (t) => {
  const { currentTracing } = await import('../../plugins/tracing.ts')
  t.equal(currentTracing(), null, 'no tracer provider, no exporter')
})
