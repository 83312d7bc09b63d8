import rateLimit from '@fastify/rate-limit'
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Db, type DbOrTx, queryRows } from '../db/client.ts'
import { errors } from './errors.ts'

export interface Limiter {
  /**
   * Counts one hit on `key` in a fixed window shared by every server process (the counter lives in
   * the database) and throws `429 rate_limited` with Retry-After once `max` is passed.
   */
  hit(key: string, max: number, windowS: number): Promise<void>
  /**
   * Drops the counters whose key ends with `:<subject>` (keys are `<what>:<kind>:<subject>`); account
   * deletion uses it for the account's id and e-mail, which are personal data.
   */
  forget(tx: DbOrTx, ...subjects: string[]): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    limits: Limiter
  }
}

async function incr(db: Db, key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
  const now = Date.now()
  const start = Math.floor(now / windowMs) * windowMs
  const [row] = await queryRows<{ count: number }>(
    db,
    sql`
    insert into rate_counters (key, window_start, count, expires_at)
    values (${key}, to_timestamp(${start / 1000}), 1, to_timestamp(${(start + windowMs) / 1000}))
    on conflict (key, window_start) do update set count = rate_counters.count + 1
    returning count`,
  )
  return { current: Number(row.count), ttl: start + windowMs - now }
}

/** What @fastify/rate-limit hands a store's child(): the route's merged options, with the route itself. */
interface ChildOptions {
  groupId?: string
  routeInfo?: { method?: string | string[]; url?: string }
}

/**
 * A store for @fastify/rate-limit over the shared counters table. The plugin calls child() once per
 * route that has its own limit; each child prefixes the keys with that route (or with the route's
 * `groupId`, for routes that must share one budget), so two routes with the same window never count
 * into one counter. Keys read `<method> <url>:ip:<address>`.
 */
export function dbStore(db: Db) {
  return class DbStore {
    constructor(
      private readonly prefix = 'global',
      private readonly groupId = '',
    ) {}
    incr(key: string, cb: (err: Error | null, res?: { current: number; ttl: number }) => void, timeWindow: number) {
      // The plugin appends the groupId to the key it generates; the prefix already says it.
      const subject = this.groupId && key.endsWith(this.groupId) ? key.slice(0, -this.groupId.length) : key
      incr(db, `${this.prefix}:ip:${subject}`, timeWindow).then((r) => cb(null, r), cb)
    }
    child(options: ChildOptions) {
      return new DbStore(routeKey(options), options.groupId ?? '')
    }
  }
}

export function routeKey(options: ChildOptions): string {
  if (options.groupId) return `group ${options.groupId}`
  const method = options.routeInfo?.method
  return `${Array.isArray(method) ? method.join(',') : (method ?? '*')} ${options.routeInfo?.url ?? '*'}`
}

export default fp(
  async function limitsPlugin(app: FastifyInstance) {
    const enabled = app.config.RATE_LIMIT_ENABLED
    // Per-route limits (config.rateLimit on a route) count per route and client IP; global is off.
    await app.register(rateLimit, {
      global: false,
      store: dbStore(app.db) as never,
      skipOnError: false,
      allowList: () => !enabled,
      errorResponseBuilder: (_req, ctx) => {
        const retry = Math.max(1, Math.ceil(ctx.ttl / 1000))
        return errors.tooMany('rate_limited', `Too many requests; try again in ${retry} s.`, retry)
      },
    })

    app.decorate('limits', {
      async hit(key, max, windowS) {
        if (!enabled) return
        const { current, ttl } = await incr(app.db, key, windowS * 1000)
        if (current > max) throw errors.tooMany('rate_limited', 'Too many requests; try again later.', ttl / 1000)
      },

      async forget(tx, ...subjects) {
        for (const subject of subjects) {
          // The subject is matched literally: LIKE's own wildcards in it are escaped.
          const pattern = `%:${subject.replace(/[\\%_]/g, (c) => `\\${c}`)}`
          await tx.execute(sql`delete from rate_counters where key like ${pattern}`)
        }
      },
    } satisfies Limiter)

    // Old windows are useless once over; sweep them now and then.
    if (app.config.JOBS_ENABLED) {
      const timer = setInterval(() => {
        app.db.execute(sql`delete from rate_counters where expires_at < now() - interval '1 hour'`).catch(() => {})
      }, 600_000)
      timer.unref()
      app.addHook('onClose', async () => clearInterval(timer))
    }
  },
  { name: 'limits', dependencies: ['config', 'db', 'errors'] },
)
