import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { type EndSessions, type TransactionEndingSessions, transactionEndingSessionsOn } from './end-sessions.ts'
import { errors } from './errors.ts'

/** What the bearer check needs of a session: is it alive, and whose is it (the session repository answers). */
export interface SessionState {
  sessionId: string
  userId: string
  /** Admin only when the session was opened by the admin login and the account is (still) an admin. */
  role: 'user' | 'admin'
  active: boolean
  /** When the account was created, while its e-mail is unverified (the verification deadline counts from it). */
  unverifiedSince: Date | null
}

export interface AccessClaims {
  sub: string
  sid: string
  role: 'user' | 'admin'
  typ?: undefined
  /** RFC 8176 methods, assurance level and OIDC auth_time (seconds): how and when the user authenticated. */
  amr?: string[]
  aal?: number
  auth_time?: number
}

export interface RefreshClaims {
  sub: string
  sid: string
  jti: string
  typ: 'refresh'
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims | RefreshClaims
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: a valid access JWT of a live session (Authorization: Bearer). */
    authenticate: onRequestAsyncHookHandler
    /** onRequest hook: authenticate, then the admin role. */
    requireAdmin: onRequestAsyncHookHandler
    sessionCache: SessionCache
    /**
     * The one way to end sessions: runs `work` in a transaction, and once it has committed, forgets the
     * sessions it ended through `end` (and their owners' cached profiles) in this process, so they stop
     * working here at once. Answers what `work` answers. `end` takes a user (one, all, all but one of
     * their sessions) or `{ client }` (every session opened through a revoked client app).
     */
    transactionEndingSessions: TransactionEndingSessions
    /** `transactionEndingSessions` for a single `end`: ends the sessions and answers their ids. */
    endSessions: (...args: Parameters<EndSessions>) => Promise<string[]>
  }
}

/**
 * Session liveness cached per process for at most SESSION_CACHE_TTL_MS (default 2 s): a revocation
 * made by this process takes effect at once, one made by another process within that time.
 * A session is looked up by the user the token names (`sub`) and its id (`sid`): the key leads with the
 * user on Citus (docs/scaling.md). Entries are kept by session id, for the user they were loaded for.
 */
export class SessionCache {
  private readonly entries = new Map<string, { userId: string; state: SessionState | null; until: number }>()
  private readonly touched = new Map<string, number>()
  constructor(
    private readonly ttlMs: number,
    private readonly load: (userId: string, sid: string) => Promise<SessionState | null>,
    private readonly touch: (userId: string, sid: string) => Promise<void>,
  ) {}

  async get(userId: string, sid: string): Promise<SessionState | null> {
    const now = Date.now()
    const hit = this.entries.get(sid)
    if (hit && hit.until > now && hit.userId === userId) return hit.state
    const state = await this.load(userId, sid)
    sweep(this.entries, (e) => e.until <= now)
    sweep(this.touched, (at) => at < now - 60_000)
    if (this.ttlMs > 0) {
      if (this.entries.size > 100_000) this.entries.clear()
      this.entries.delete(sid)
      this.entries.set(sid, { userId, state, until: now + this.ttlMs })
    }
    // last_used_at is written at most once a minute per session, off the request's critical path.
    if (state?.active && (this.touched.get(sid) ?? 0) < now - 60_000) {
      if (this.touched.size > 100_000) this.touched.clear()
      this.touched.delete(sid)
      this.touched.set(sid, now)
      this.touch(userId, sid).catch(() => {})
    }
    return state
  }

  invalidate(...sids: string[]) {
    for (const sid of sids) this.entries.delete(sid)
  }
}

/**
 * Drops a cache's stale entries from its front. Entries are (re)inserted at the back when (re)set, so a Map's
 * insertion order is their time order and the sweep stops at the first fresh one: amortised O(1) a call.
 * Without it an entry stayed until the 100,000-entry reset; a long-running server kept every session and
 * user it had seen in its old generation (the soak, bench/soak.ts, BENCHMARKS.md).
 */
function sweep<V>(map: Map<string, V>, stale: (value: V) => boolean): void {
  for (const [key, value] of map) {
    if (!stale(value)) return
    map.delete(key)
  }
}

/**
 * Values by key for at most ttlMs, in this process only, one load in flight per key (a burst of misses
 * costs one query). A failed load is not kept. Bounded: past `max` entries the map starts over.
 */
export class TtlCache<T> {
  private readonly entries = new Map<string, { value: Promise<T>; until: number }>()
  constructor(
    private readonly ttlMs: number,
    private readonly load: (key: string) => Promise<T>,
    private readonly max = 100_000,
  ) {}

  get(key: string): Promise<T> {
    const now = Date.now()
    const hit = this.entries.get(key)
    if (hit && hit.until > now) return hit.value
    const value = this.load(key)
    if (this.ttlMs > 0) {
      sweep(this.entries, (e) => e.until <= now)
      if (this.entries.size >= this.max) this.entries.clear()
      // Set before the load resolves: an invalidate() during the load drops this entry too.
      const entry = { value, until: now + this.ttlMs }
      this.entries.delete(key)
      this.entries.set(key, entry)
      value.catch(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key)
      })
    }
    return value
  }

  invalidate(...keys: string[]) {
    for (const key of keys) this.entries.delete(key)
  }
}

/**
 * True when the account is unverified past EMAIL_VERIFICATION_DEADLINE_DAYS: it is locked (`403 account_locked`)
 * at login, at refresh and on every bearer request until the address is verified (nwapp reference).
 */
export function verificationDeadlinePassed(unverifiedSince: Date | null, deadlineDays: number, now = Date.now()) {
  return unverifiedSince !== null && now > unverifiedSince.getTime() + deadlineDays * 86400_000
}

export const accountLocked = () =>
  errors.forbidden('Verify your e-mail address to unlock this account; a new link can be requested.', 'account_locked')

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization
  if (typeof header !== 'string') return null
  const m = /^Bearer\s+([A-Za-z0-9_\-.]+)$/i.exec(header.trim())
  return m ? m[1] : null
}

export default fp(
  async function authPlugin(app) {
    await app.register(fastifyJwt, {
      secret: app.config.JWT_SECRET,
      // The algorithm is pinned both ways: no "none", no key confusion.
      sign: { algorithm: 'HS256' },
      // Verified tokens are cached (LRU, never past their exp): the HMAC and claim checks run once per token.
      verify: { algorithms: ['HS256'], cache: true },
    })
    const sessionsRepo = app.sessionRepository
    const cache = new SessionCache(
      app.config.SESSION_CACHE_TTL_MS,
      (userId, sid) => sessionsRepo.state(userId, sid),
      (userId, sid) => sessionsRepo.touch(userId, sid),
    )
    app.decorate('sessionCache', cache)

    const transactionEndingSessions = transactionEndingSessionsOn(app.db, sessionsRepo, (ended, owners) => {
      cache.invalidate(...ended)
      app.profileCache.invalidate(...owners)
    })
    app.decorate('transactionEndingSessions', transactionEndingSessions)
    app.decorate('endSessions', function endSessions(...args: Parameters<EndSessions>) {
      return transactionEndingSessions((_tx, end) => end(...args))
    })

    async function authenticate(request: FastifyRequest, reply: FastifyReply) {
      const token = bearerToken(request)
      if (!token) throw errors.unauthorized('unauthorized', 'A Bearer access token is required.')
      // A NOWATCH access token is a JWT; a third-party app's (OAuth) token is opaque: plugins/oauth-bearer.ts.
      if (!token.includes('.')) return app.oauthBearer.authenticate(request, reply, token)
      let claims: AccessClaims | RefreshClaims
      try {
        claims = app.jwt.verify<AccessClaims | RefreshClaims>(token)
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'FAST_JWT_EXPIRED') throw errors.unauthorized('token_expired', 'The access token has expired.')
        throw errors.unauthorized('invalid_token', 'The access token is not valid.')
      }
      // A refresh token is not an access token.
      if (claims.typ !== undefined || typeof claims.sid !== 'string' || typeof claims.sub !== 'string') {
        throw errors.unauthorized('invalid_token', 'The access token is not valid.')
      }
      const state = await cache.get(claims.sub, claims.sid)
      if (!state?.active || state.userId !== claims.sub) {
        throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      }
      // Read with the session state, so within SESSION_CACHE_TTL_MS of the verification or the deadline.
      if (verificationDeadlinePassed(state.unverifiedSince, app.config.EMAIL_VERIFICATION_DEADLINE_DAYS)) {
        throw accountLocked()
      }
      // The role comes from the database, so a demotion applies within the cache time.
      request.user = {
        sub: claims.sub,
        sid: claims.sid,
        role: state.role,
        amr: claims.amr,
        aal: claims.aal,
        auth_time: claims.auth_time,
      }
    }

    // Every bearer route can answer `403 account_locked` (the verification deadline): document it on each.
    app.addHook('onRoute', function documentAccountLocked(route) {
      const schema = route.schema as { security?: Array<Record<string, unknown>>; response?: Record<number, unknown> }
      const response = schema?.response
      if (!response || !schema.security?.some((s) => 'bearerAuth' in s)) return
      if (response[401] && !response[403]) response[403] = response[401]
    })

    app.decorate('authenticate', authenticate)
    app.decorate('requireAdmin', async function requireAdmin(request: FastifyRequest, reply: FastifyReply) {
      await authenticate(request, reply)
      if (request.user.role !== 'admin') throw errors.forbidden('This route is for administrators.')
      // ADMIN_MFA_REQUIRED: admin power needs a session that passed a second factor (routes/mfa).
      if (app.config.ADMIN_MFA_REQUIRED && (request.user.aal ?? 1) < 2) {
        throw errors.forbidden('Administrators need a second factor: log in again with it.', 'mfa_required')
      }
    })
  },
  { name: 'auth', dependencies: ['config', 'db', 'errors', 'session-repository', 'profile-cache', 'oauth-bearer'] },
)
