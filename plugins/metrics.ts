import type { PGlite } from '@electric-sql/pglite'
import { sql } from 'drizzle-orm'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { queryRows } from '../db/client.ts'

/**
 * Prometheus metrics of this process (prom-client), read at GET /metrics with METRICS_TOKEN.
 * Labels are bounded sets only: the route *pattern* (`/v1/users/:id`, never the URL: no ids, no
 * e-mails), the method, the status, the error identifier of our contract. Nothing personal.
 */
export interface Metrics {
  registry: Registry
  /** Samples that an ingest batch brought, by whether they were new (`accepted`) or already stored. */
  samplesIngested: Counter<'result'>
  /** Uploads per statement of the upload group commit (measurement/group-commit.ts; PostgreSQL). */
  uploadGroupSize: Histogram
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

const LOGIN_ROUTES = new Set([
  '/v1/auth/login',
  '/v2/auth/login',
  '/v2/auth/login/admin',
  // The OAuth sign-in page's password and second-factor forms (routes/oauth): HTML answers, see noteErrorId.
  '/oauth/interaction/:uid/login',
  '/oauth/interaction/:uid/code',
])
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]
// The identifier at the head of our error bodies: `{"error":"rate_limited",…`.
const ERROR_ID = /^\{"error":"([a-z0-9_]{1,64})"/
const errorIds = new WeakMap<FastifyRequest, string>()

/** The error identifier of an answer that is not a JSON error body (an HTML page), for the error labels. */
export function noteErrorId(request: FastifyRequest, id: string) {
  errorIds.set(request, id)
}

type QueryObserver = (seconds: number) => void
const OBSERVERS = Symbol('nowatch.queryObservers')
type Observed = { [OBSERVERS]?: Set<QueryObserver> }

function timed<T>(observers: Set<QueryObserver>, run: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint()
  const done = () => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    for (const o of observers) o(seconds)
  }
  return run().finally(done)
}

/** Times every query of a PGlite instance (its own and its transactions'), once per instance. */
function observePglite(pglite: PGlite, observer: QueryObserver): () => void {
  const target = pglite as PGlite & Observed
  if (!target[OBSERVERS]) {
    const observers = new Set<QueryObserver>()
    target[OBSERVERS] = observers
    const query = pglite.query.bind(pglite)
    const transaction = pglite.transaction.bind(pglite)
    pglite.query = ((...args: Parameters<PGlite['query']>) => timed(observers, () => query(...args))) as PGlite['query']
    pglite.transaction = ((callback: Parameters<PGlite['transaction']>[0]) =>
      transaction((tx) => {
        const txQuery = tx.query.bind(tx)
        tx.query = ((...args: Parameters<typeof tx.query>) =>
          timed(observers, () => txQuery(...args))) as typeof tx.query
        return callback(tx)
      })) as PGlite['transaction']
  }
  target[OBSERVERS]?.add(observer)
  return () => target[OBSERVERS]?.delete(observer)
}

/** Times the queries of every connection the pool opens from now on (promise and callback forms). */
function observePool(pool: pg.Pool, observer: QueryObserver): () => void {
  const onConnect = (client: pg.PoolClient & Observed) => {
    if (client[OBSERVERS]) return
    const observers = new Set([observer])
    client[OBSERVERS] = observers
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const start = process.hrtime.bigint()
      // Streams (COPY, cursors) are submittables: not timed here; one that says when it is done (db/pipelined.ts) is.
      if (typeof (args[0] as { submit?: unknown })?.submit === 'function') {
        const done = (args[0] as { done?: unknown }).done
        if (done instanceof Promise) {
          const timedDone = () => {
            const seconds = Number(process.hrtime.bigint() - start) / 1e9
            for (const o of observers) o(seconds)
          }
          done.then(timedDone, timedDone)
        }
        return query(...args)
      }
      const record = () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9
        for (const o of observers) o(seconds)
      }
      const last = args[args.length - 1]
      if (typeof last === 'function') {
        args[args.length - 1] = (...cbArgs: unknown[]) => {
          record()
          return (last as (...a: unknown[]) => unknown)(...cbArgs)
        }
        return query(...args)
      }
      const result = query(...args) as Promise<unknown>
      return result.finally(record)
    }
  }
  pool.on('connect', onConnect)
  return () => pool.off('connect', onConnect)
}

export default fp(
  async function metricsPlugin(app: FastifyInstance) {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })

    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer a request, by route pattern, method and status',
      labelNames: ['method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    })
    const failures = new Counter({
      name: 'http_request_errors_total',
      help: 'Answers with status >= 400, by route pattern, status and error identifier',
      labelNames: ['method', 'route', 'status_code', 'error'],
      registers: [registry],
    })
    const loginFailures = new Counter({
      name: 'auth_login_failures_total',
      help: 'Refused logins, by error identifier (invalid_credentials, account_locked, rate_limited …)',
      labelNames: ['error'],
      registers: [registry],
    })
    const rateLimited = new Counter({
      name: 'rate_limit_hits_total',
      help: 'Requests refused with 429 rate_limited, by route pattern',
      labelNames: ['route'],
      registers: [registry],
    })
    const samplesIngested = new Counter({
      name: 'measurement_samples_ingested_total',
      help: 'Measurement samples received in accepted batches: accepted (new) or duplicate (already stored)',
      labelNames: ['result'],
      registers: [registry],
    })
    const uploadGroupSize = new Histogram({
      name: 'measurement_upload_group_size',
      help: 'Uploads written by one statement of the group commit (PostgreSQL): 1 on a quiet server, more under load',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    })
    const queryDuration = new Histogram({
      name: 'db_query_duration_seconds',
      help: 'Time of one database query as this process sees it (queueing for a connection excluded)',
      labelNames: ['driver'],
      buckets: QUERY_BUCKETS,
      registers: [registry],
    })

    const { database, db } = app
    const pool = database.pool
    new Gauge({
      name: 'db_pool_connections',
      help: 'node-postgres pool connections: total, idle, and requests waiting for one (PostgreSQL only)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        if (!pool) return
        this.set({ state: 'total' }, pool.totalCount)
        this.set({ state: 'idle' }, pool.idleCount)
        this.set({ state: 'waiting' }, pool.waitingCount)
      },
    })
    new Gauge({
      name: 'db_pool_max_connections',
      help: 'PG_POOL_MAX: connections this process may open (1 on the embedded database)',
      registers: [registry],
      collect() {
        this.set(pool ? app.config.PG_POOL_MAX : 1)
      },
    })
    // The job queues, read from the database at scrape time (so every instance reports the shared queue);
    // one read per scrape, shared by the three gauges.
    type QueueDepth = Record<string, { n: number; age: number }>
    let reading: { at: number; result: Promise<QueueDepth | null> } | null = null
    const readQueues = () => {
      if (!reading || Date.now() - reading.at > 1000) {
        // webhooks: messages waiting to be sent (or retried) plus events not grouped into a message yet.
        const result = queryRows<{ queue: string; n: number; age: number | null }>(
          db,
          sql`select 'mail' as queue, count(*)::int as n,
                     coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as age
                from mail_outbox where status = 'pending'
              union all
              select 'webhooks', (select count(*) from webhook_messages where status = 'pending')::int
                                 + (select count(*) from webhook_events where message_id is null)::int,
                     coalesce(extract(epoch from now() - least(
                       (select min(created_at) from webhook_messages where status = 'pending'),
                       (select min(created_at) from webhook_events where message_id is null))), 0)::float8`,
        ).then(
          (rows) => Object.fromEntries(rows.map((r) => [r.queue, { n: r.n, age: r.age ?? 0 }])),
          () => null,
        )
        reading = { at: Date.now(), result }
      }
      return reading.result
    }
    new Gauge({
      name: 'job_queue_depth',
      help: 'Jobs waiting to run, by queue (mail: the outbox messages not sent yet; webhooks: events and messages not delivered yet)',
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        const q = await readQueues()
        for (const [queue, d] of Object.entries(q ?? {})) this.set({ queue }, d.n)
      },
    })
    new Gauge({
      name: 'job_queue_oldest_age_seconds',
      help: 'Age of the oldest waiting job, by queue (0 when empty)',
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        const q = await readQueues()
        for (const [queue, d] of Object.entries(q ?? {})) this.set({ queue }, d.age)
      },
    })
    new Gauge({
      name: 'job_queue_scrape_errors',
      help: '1 when the last scrape could not read the queues (database unreachable), else 0',
      registers: [registry],
      async collect() {
        this.set((await readQueues()) ? 0 : 1)
      },
    })

    const driver = database.via === 'postgres' ? 'postgres' : 'pglite'
    const observe = (seconds: number) => queryDuration.observe({ driver }, seconds)
    const stopObserving = database.pglite
      ? observePglite(database.pglite, observe)
      : pool
        ? observePool(pool, observe)
        : () => {}

    app.addHook('onSend', function captureErrorId(request, reply, payload, done) {
      if (reply.statusCode >= 400 && typeof payload === 'string') {
        const id = ERROR_ID.exec(payload)?.[1]
        if (id) errorIds.set(request, id)
      }
      done(null, payload)
    })
    app.addHook('onResponse', function recordRequest(request, reply, done) {
      const route = request.routeOptions.url ?? '(unmatched)'
      const status = reply.statusCode
      const labels = { method: request.method, route, status_code: String(status) }
      duration.observe(labels, reply.elapsedTime / 1000)
      if (status >= 400) {
        const error = errorIds.get(request) ?? 'none'
        failures.inc({ ...labels, error })
        if (error === 'rate_limited') rateLimited.inc({ route })
        if (LOGIN_ROUTES.has(route) && status < 500) loginFailures.inc({ error })
      }
      done()
    })
    app.addHook('onClose', async function stopMetrics() {
      stopObserving()
      registry.clear()
    })

    app.decorate('metrics', { registry, samplesIngested, uploadGroupSize })
  },
  { name: 'metrics', dependencies: ['config', 'db'] },
)
