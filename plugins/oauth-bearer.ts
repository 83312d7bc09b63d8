import { sql } from 'drizzle-orm'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { queryRows } from '../db/client.ts'
import { accountLocked, verificationDeadlinePassed } from './auth.ts'
import { AppError, errors } from './errors.ts'
import { type OAuthScope, isOAuthScope } from './oauth-scopes.ts'

/** What a third-party (OAuth) access token grants the request it came with. */
export interface OAuthGrantContext {
  clientId: string
  grantId: string
  scopes: Set<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    oauthBearer: {
      /**
       * The bearer check of a third-party access token (an opaque token of the OAuth server, not a
       * NOWATCH JWT): alive, of a live client, granted by a live account; then the route's scope, then
       * the client's rate limit. Sets `request.user` (role `user`) and `request.oauth`.
       */
      authenticate(request: FastifyRequest, reply: FastifyReply, token: string): Promise<void>
    }
  }
  interface FastifyRequest {
    /** Set when the request came with a third-party access token. */
    oauth?: OAuthGrantContext
  }
}

const REALM = 'nowatch'

/** RFC 6750 §3: the error in a `WWW-Authenticate: Bearer` challenge, with the scope that was missing. */
export function bearerChallenge(error: string, description: string, scope?: string): string {
  const quote = (v: string) => `"${v.replace(/["\\]/g, '')}"`
  return [
    `Bearer realm=${quote(REALM)}`,
    `error=${quote(error)}`,
    `error_description=${quote(description)}`,
    ...(scope ? [`scope=${quote(scope)}`] : []),
  ].join(', ')
}

function invalidToken(description: string) {
  return new AppError(401, 'invalid_token', description, undefined, {
    'www-authenticate': bearerChallenge('invalid_token', description),
  })
}

/** `scope`: the scope the route needs, or several (space-separated, any one of them, RFC 6750 §3). */
export function insufficientScope(description: string, scope?: string) {
  return new AppError(403, 'insufficient_scope', description, undefined, {
    'www-authenticate': bearerChallenge('insufficient_scope', description, scope),
  })
}

/**
 * A route that declares `config.oauthScope` shows it in openapi.yaml: the oauth2 scheme with that scope
 * beside the bearer JWT (an onRoute hook; routes/owner-reads.ts calls it after setting the read scope).
 */
export function documentOAuthScope(route: RouteOptions) {
  const scope = route.config?.oauthScope
  const schema = route.schema as { security?: Array<Record<string, string[]>> } | undefined
  if (!scope || !schema?.security) return
  // Security requirements in a list are alternatives (OpenAPI 3): one per scope is "any one of them".
  if (!schema.security.some((s) => 'oauth2' in s)) {
    schema.security = [...schema.security, ...requiredScopes(scope).map((s) => ({ oauth2: [s] }))]
  }
}

/** A route's `oauthScope` as the list of which a token needs any one. */
export const requiredScopes = (scope: OAuthScope | readonly OAuthScope[] | undefined): OAuthScope[] =>
  scope === undefined ? [] : typeof scope === 'string' ? [scope] : [...scope]

interface TokenRow {
  payload: { scope?: string; exp?: number }
  grant_id: string
  account_id: string
  client_id: string
  disabled_at: Date | null
  unverified_since: Date | null
}

export default fp(
  async function oauthBearerPlugin(app: FastifyInstance) {
    const { config } = app
    const touched = new Map<string, number>()
    const limit = config.OAUTH_CLIENT_RATE_LIMIT
    const windowS = config.OAUTH_CLIENT_RATE_WINDOW_S

    app.addHook('onRoute', documentOAuthScope)

    async function load(token: string): Promise<TokenRow | undefined> {
      const [row] = await queryRows<TokenRow>(
        app.db,
        sql`select t.payload, t.grant_id, t.account_id, t.client_id, u.disabled_at,
                   case when u.email_verified_at is null then u.created_at end as unverified_since
              from oauth_models t
              join oauth_models g on g.kind = 'Grant' and g.id = t.grant_id
              join oauth_clients c on c.id = t.client_id and c.revoked_at is null
              join users u on u.id = t.account_id
             where t.kind = 'AccessToken' and t.id = ${token} and t.expires_at > now()
               and t.consumed_at is null and (g.expires_at is null or g.expires_at > now())`,
      )
      return row
    }

    /**
     * The per-client counters, shared by every process through the rate_counters table. One row per client
     * and window takes every request of that client: written once per request, the row's lock serialises
     * them at the speed of commits (a few hundred a second, see BENCHMARKS.md). So each process counts in
     * memory and adds its count to the row every FLUSH_MS, reading back the total of all processes; the
     * first request of a window in a process is counted in the row at once. The limit can be passed by
     * what other processes served in the last FLUSH_MS, never more.
     */
    const FLUSH_MS = 200
    /** Per client key: the row's total as last read, requests not yet written, and those being written. */
    const tallies = new Map<string, { start: number; known: number; pending: number; inFlight: number }>()
    const windowMs = windowS * 1000

    async function add(key: string, start: number, n: number): Promise<number> {
      const [row] = await queryRows<{ count: number }>(
        app.db,
        sql`insert into rate_counters (key, window_start, count, expires_at)
            values (${key}, to_timestamp(${start / 1000}), ${n}, to_timestamp(${(start + windowMs) / 1000}))
            on conflict (key, window_start) do update set count = rate_counters.count + ${n}
            returning count`,
      )
      return Number(row.count)
    }

    async function flush() {
      const now = Date.now()
      for (const [key, tally] of tallies) {
        const n = tally.pending
        if (n > 0) {
          // Still counted (as in flight) while the row is written, so a request meanwhile sees them.
          tally.pending = 0
          tally.inFlight += n
          try {
            // Counts only grow within a window: an older flush answering late must not lower `known`.
            tally.known = Math.max(tally.known, await add(key, tally.start, n))
          } catch {
            tally.pending += n
          } finally {
            tally.inFlight -= n
          }
        }
        if (tally.start + windowMs <= now && tally.pending === 0 && tally.inFlight === 0) tallies.delete(key)
      }
    }
    if (config.RATE_LIMIT_ENABLED) {
      const timer = setInterval(() => void flush(), FLUSH_MS)
      timer.unref()
      app.addHook('onClose', async () => {
        clearInterval(timer)
        await flush()
      })
    }

    async function hit(clientId: string): Promise<{ current: number; ttl: number }> {
      const key = `oauth:client:${clientId}`
      const now = Date.now()
      const start = Math.floor(now / windowMs) * windowMs
      const ttl = start + windowMs - now
      const tally = tallies.get(key)
      if (tally && tally.start === start) {
        tally.pending++
        return { current: tally.known + tally.inFlight + tally.pending, ttl }
      }
      const fresh = { start, known: 0, pending: 0, inFlight: 1 }
      tallies.set(key, fresh)
      try {
        fresh.known = Math.max(fresh.known, await add(key, start, 1))
      } finally {
        fresh.inFlight -= 1
      }
      return { current: fresh.known + fresh.inFlight + fresh.pending, ttl }
    }

    /** Per client, across its users and every process: RateLimit-Policy / RateLimit headers. */
    async function rateLimit(clientId: string, reply: FastifyReply) {
      if (!config.RATE_LIMIT_ENABLED) return
      const { current, ttl } = await hit(clientId)
      const reset = Math.max(1, Math.ceil(ttl / 1000))
      // draft-ietf-httpapi-ratelimit-headers: the policy (quota q in window w seconds) and what is left of it.
      reply.header('ratelimit-policy', `"client";q=${limit};w=${windowS}`)
      reply.header('ratelimit', `"client";r=${Math.max(0, limit - current)};t=${reset}`)
      if (current > limit) {
        throw errors.tooMany('rate_limited', `This app made too many requests; try again in ${reset} s.`, reset)
      }
    }

    app.decorate('oauthBearer', {
      async authenticate(request, reply, token) {
        const row = await load(token)
        if (!row) throw invalidToken('The access token is not valid, has expired or was revoked.')
        if (row.disabled_at) throw invalidToken('The account of this access token is disabled.')
        if (
          verificationDeadlinePassed(
            row.unverified_since ? new Date(row.unverified_since) : null,
            config.EMAIL_VERIFICATION_DEADLINE_DAYS,
          )
        ) {
          throw accountLocked()
        }
        const scopes = new Set((row.payload.scope ?? '').split(' ').filter(isOAuthScope))
        const required = requiredScopes(request.routeOptions.config?.oauthScope)
        if (required.length === 0) {
          throw insufficientScope('Third-party access tokens are not accepted on this route.')
        }
        if (!required.some((s) => scopes.has(s))) {
          throw insufficientScope(
            required.length === 1
              ? `This route needs the ${required[0]} scope, which this app was not granted.`
              : `This route needs one of the ${required.join(', ')} scopes; this app was granted none of them.`,
            required.join(' '),
          )
        }
        await rateLimit(row.client_id, reply)
        request.oauth = { clientId: row.client_id, grantId: row.grant_id, scopes }
        request.user = { sub: row.account_id, sid: `oauth:${row.grant_id}`, role: 'user', amr: ['pwd'], aal: 1 }
        // The user's list of apps shows when each was last used: written at most once a minute per grant.
        const now = Date.now()
        if ((touched.get(row.grant_id) ?? 0) < now - 60_000) {
          if (touched.size > 100_000) touched.clear()
          touched.set(row.grant_id, now)
          app.db
            .execute(sql`update oauth_models set last_used_at = now() where kind = 'Grant' and id = ${row.grant_id}`)
            .catch(() => {})
        }
      },
    })
  },
  { name: 'oauth-bearer', dependencies: ['config', 'db', 'errors'] },
)
