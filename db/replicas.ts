import { AsyncLocalStorage } from 'node:async_hooks'
import pg from 'pg'

/**
 * Read replicas (issue 21). What a request handler declared `reads: 'replica'` runs under: its plain
 * reads (not those inside a transaction) go to a replica in rotation, unless the caller's own writes
 * may not have reached it yet. `wrote` turns the rest of the request to the primary: a handler that
 * writes and then reads must read what it wrote.
 */
export interface ReadScope {
  userId?: string
  wrote: boolean
  /** The replica chosen for this request (once, at its first read), or null: the primary. */
  target?: Promise<Replica | null>
}

export const readScope = new AsyncLocalStorage<ReadScope>()

/** A WAL position `X/Y` (hex) as a number that compares. */
export function lsn(text: string): bigint {
  const [hi, lo] = text.split('/')
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`)
}

const READ = /^[\s(]*(select|with|values|table)\b/i
const WRITE_IN_CTE = /\b(insert|update|delete|merge)\b/i
// A standby refuses row locks; they are for transactions on the primary anyway.
const LOCKING = /\bfor\s+(update|share|no\s+key\s+update|key\s+share)\b/i

/** Whether a statement only reads (so a standby can run it). Errs towards the primary. */
export function isReadOnly(text: string | undefined): boolean {
  if (!text || !READ.test(text) || LOCKING.test(text)) return false
  return !/^[\s(]*with\b/i.test(text) || !WRITE_IN_CTE.test(text)
}

export type ReplicaState = 'starting' | 'up' | 'lagging' | 'down'

export interface Replica {
  /** 1-based place in DATABASE_REPLICA_URLS (never the URL: /readyz is public). */
  index: number
  pool: pg.Pool
  state: ReplicaState
  /** Seconds behind the primary, as this process measures it (null until measured). */
  lagSeconds: number | null
  replayLsn: bigint | null
  /** Why it is out of rotation (no address, no credentials). */
  reason?: string
  /** Reads served, and reads that failed on it and were served by the primary. */
  reads: number
  fallbacks: number
}

export interface ReplicaOptions {
  maxLagS: number
  checkIntervalMs: number
  log?: { warn(obj: object, msg: string): void }
}

// SQLSTATE classes after which the same read is retried on the primary: connection (08), resources (53),
// operator intervention / shutdown (57), system (58, XX); 40001 is also "conflict with recovery" on a standby;
// 25006 a write sent to a standby (the classifier above missed it).
const RETRY_CLASSES = new Set(['08', '53', '57', '58', 'XX'])
const RETRY_CODES = new Set(['40001', '25006'])
/** Errors that mean the replica itself is gone: it leaves rotation until the health check sees it again. */
const DOWN_CLASSES = new Set(['08', '53', '57'])

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The replicas of one primary, a health loop that keeps each in or out of rotation, and the
 * read-your-writes fences.
 *
 * Lag is measured against the primary, not with `now() - pg_last_xact_replay_timestamp()` (which grows on an
 * idle, caught-up standby and stays small on one cut off from its primary): every check samples the primary's
 * `pg_current_wal_lsn()`; a replica whose `pg_last_wal_replay_lsn()` has not reached a sample taken t seconds
 * ago is at least t seconds behind.
 *
 * Read-your-writes: after a user's successful write the primary's `pg_current_wal_lsn()` (which is past that
 * write's commit) is stored in `read_fences` on the primary, so every process sees it, not only the one that
 * took the write; that user's replica reads go to a replica whose replay position has passed it, else to the
 * primary. The fence expires after REPLICA_MAX_LAG_S plus two checks: by then every replica still in rotation
 * has replayed it. The cost is one primary-key lookup on the primary per replica-routed request (measured in
 * BENCHMARKS.md), far below the reads it moves away.
 */
export class ReplicaSet {
  readonly replicas: Replica[]
  private samples: Array<{ at: number; lsn: bigint }> = []
  private readonly localFences = new Map<string, { lsn: bigint; until: number }>()
  private timer?: NodeJS.Timeout
  private next = 0
  private lastSweep = 0
  private checking?: Promise<void>
  readonly fenceTtlS: number

  constructor(
    private readonly primary: pg.Pool,
    urls: string[],
    private readonly options: ReplicaOptions,
    poolMax: number,
  ) {
    this.fenceTtlS = options.maxLagS + Math.ceil((2 * options.checkIntervalMs) / 1000)
    this.replicas = urls.map((url, i) => {
      const pool = new pg.Pool({
        connectionString: url,
        max: poolMax,
        // A replica that does not answer must cost a request little: its read goes to the primary.
        connectionTimeoutMillis: 2000,
        idleTimeoutMillis: 30000,
      })
      pool.on('error', () => {})
      return { index: i + 1, pool, state: 'starting', lagSeconds: null, replayLsn: null, reads: 0, fallbacks: 0 }
    })
  }

  /** Runs the first check (replicas join only once measured), then one every checkIntervalMs. */
  async start(): Promise<void> {
    await this.check()
    this.timer = setInterval(() => {
      this.checking ??= this.check().finally(() => {
        this.checking = undefined
      })
    }, this.options.checkIntervalMs)
    this.timer.unref()
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.checking
    await Promise.all(this.replicas.map((r) => r.pool.end().catch(() => {})))
  }

  /** On the primary, whatever scope the caller runs in (the fence lookup runs while a read waits for it). */
  private primaryQuery<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
    return readScope.exit(() => this.primary.query<R>(text, values))
  }

  inRotation(): Replica[] {
    return this.replicas.filter((r) => r.state === 'up')
  }

  /** One health check of every replica (exported for tests that do not want to wait for the loop). */
  async check(): Promise<void> {
    const now = Date.now()
    const timeout = Math.max(1000, Math.min(3000, 2 * this.options.checkIntervalMs))
    try {
      const res = await withTimeout(
        this.primaryQuery<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn'),
        timeout,
      )
      this.samples.push({ at: now, lsn: lsn(res.rows[0].lsn) })
      const keep = now - (this.options.maxLagS + 5) * 1000
      while (this.samples.length > 1 && (this.samples[0]?.at ?? now) < keep) this.samples.shift()
    } catch {
      // The primary does not answer: lag cannot be measured; replicas keep the state of their own check.
    }
    await Promise.all(this.replicas.map((r) => this.checkReplica(r, now, timeout)))
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now
      for (const [user, f] of this.localFences) if (f.until < now) this.localFences.delete(user)
      await this.primaryQuery('delete from read_fences where expires_at < now()').catch(() => {})
    }
  }

  private async checkReplica(r: Replica, now: number, timeout: number) {
    const before = r.state
    try {
      const res = await withTimeout(
        r.pool.query<{ standby: boolean; replay: string | null }>(
          'select pg_is_in_recovery() as standby, pg_last_wal_replay_lsn()::text as replay',
        ),
        timeout,
      )
      const row = res.rows[0]
      if (!row?.standby || !row.replay) {
        Object.assign(r, { state: 'down', reason: 'not a standby (pg_is_in_recovery() is false)', lagSeconds: null })
      } else {
        r.replayLsn = lsn(row.replay)
        r.lagSeconds = this.lagOf(r.replayLsn, now)
        const within = r.lagSeconds <= this.options.maxLagS
        r.state = within ? 'up' : 'lagging'
        r.reason = within ? undefined : `more than REPLICA_MAX_LAG_S (${this.options.maxLagS} s) behind the primary`
      }
    } catch (err) {
      Object.assign(r, { state: 'down', reason: describe(err) })
    }
    if (r.state !== before && before !== 'starting') {
      this.options.log?.warn({ replica: r.index, state: r.state, lag_s: r.lagSeconds }, 'read replica changed state')
    }
  }

  private lagOf(replay: bigint, now: number): number {
    const latest = this.samples.at(-1)
    if (!latest || replay >= latest.lsn) return 0
    const first = this.samples.find((s) => s.lsn > replay) ?? latest
    // Behind even the oldest sample: at least that old, and unknown beyond it.
    if (first === this.samples[0]) return Math.max((now - first.at) / 1000, this.options.maxLagS + 1)
    return (now - first.at) / 1000
  }

  /** Called after a user's write committed: that user reads from the primary until replicas pass this point. */
  async recordWrite(userId: string): Promise<void> {
    const res = await this.primaryQuery<{ lsn: string }>(
      // From users: a write that deleted the account (or an admin's deletion of their own) leaves nothing to fence.
      `insert into read_fences (user_id, lsn, expires_at)
       select id, pg_current_wal_lsn(), now() + make_interval(secs => $2) from users where id = $1
       on conflict (user_id) do update set lsn = excluded.lsn, expires_at = excluded.expires_at
       returning lsn::text as lsn`,
      [userId, this.fenceTtlS],
    )
    const at = res.rows[0]?.lsn
    if (at) this.localFences.set(userId, { lsn: lsn(at), until: Date.now() + this.fenceTtlS * 1000 })
  }

  private async fenceOf(userId: string): Promise<bigint | undefined> {
    const local = this.localFences.get(userId)
    let fence = local && local.until > Date.now() ? local.lsn : undefined
    try {
      const res = await this.primaryQuery<{ lsn: string }>(
        'select lsn::text as lsn from read_fences where user_id = $1 and expires_at > now()',
        [userId],
      )
      const shared = res.rows[0] ? lsn(res.rows[0].lsn) : undefined
      if (shared !== undefined && (fence === undefined || shared > fence)) fence = shared
    } catch {
      // The primary is unreachable: its writes cannot have happened since; the replica is the best answer.
    }
    return fence
  }

  /** The replica for one request's reads, or null for the primary. */
  async choose(userId: string | undefined): Promise<Replica | null> {
    const live = this.inRotation()
    if (live.length === 0) return null
    const fence = userId ? await this.fenceOf(userId) : undefined
    let eligible = fence === undefined ? live : live.filter((r) => r.replayLsn !== null && r.replayLsn >= fence)
    if (eligible.length === 0 && fence !== undefined) {
      // The last check may be a second old: ask one replica where it is now (cheap, and not on the primary).
      const r = live[this.next++ % live.length] as Replica
      try {
        const res = await r.pool.query<{ replay: string }>('select pg_last_wal_replay_lsn()::text as replay')
        const replay = res.rows[0]?.replay
        if (replay && lsn(replay) >= fence) eligible = [r]
      } catch {}
    }
    if (eligible.length === 0) return null
    return eligible[this.next++ % eligible.length] as Replica
  }

  /** Runs a read on the request's replica; a failure there is retried once on the primary. */
  async read<T>(scope: ReadScope, onPrimary: () => Promise<T>, onReplica: (pool: pg.Pool) => Promise<T>): Promise<T> {
    scope.target ??= this.choose(scope.userId)
    const replica = await scope.target
    if (!replica) return onPrimary()
    try {
      const result = await onReplica(replica.pool)
      replica.reads++
      return result
    } catch (err) {
      const state = sqlState(err)
      if (state && !RETRY_CODES.has(state) && !RETRY_CLASSES.has(state.slice(0, 2))) throw err
      replica.fallbacks++
      if (!state || DOWN_CLASSES.has(state.slice(0, 2))) {
        Object.assign(replica, { state: 'down', reason: describe(err) })
      }
      if (state === '25006') this.options.log?.warn({ replica: replica.index }, 'a write was routed to a replica')
      scope.target = Promise.resolve(null)
      return onPrimary()
    }
  }

  status() {
    return this.replicas.map((r) => ({
      replica: r.index,
      state: r.state,
      lag_seconds: r.lagSeconds === null ? null : Math.round(r.lagSeconds * 10) / 10,
      ...(r.reason && { reason: r.reason }),
    }))
  }
}

function describe(err: unknown): string {
  const state = sqlState(err)
  if (state) return `SQLSTATE ${state}`
  const code = (err as { code?: unknown })?.code
  if (typeof code === 'string') return code
  const message = (err as Error)?.message ?? 'unreachable'
  return /no answer within|timeout/i.test(message) ? 'no answer in time' : 'unreachable'
}

/** Set while a read-only snapshot transaction is opened (db/snapshot.ts); `onReplica` says where it went. */
export const snapshotReads = new AsyncLocalStorage<{ onReplica: boolean }>()

/** Whether a failed read on a replica is worth running again on the primary (as ReplicaSet.read does). */
export function retryOnPrimary(err: unknown): boolean {
  const state = sqlState(err)
  return !state || RETRY_CODES.has(state) || RETRY_CLASSES.has(state.slice(0, 2))
}

/**
 * The primary's pool, which sends the plain reads of a replica-scoped request to the replica set. Drizzle's
 * node-postgres session calls `query` for statements and `connect` for transactions, so every query of a
 * repository passes here without the repository knowing.
 */
export class RoutedPool extends pg.Pool {
  replicas?: ReplicaSet

  // biome-ignore lint/suspicious/noExplicitAny: pg.Pool's overloads
  override connect(...args: any[]): any {
    const scope = readScope.getStore()
    const primary = () => (super.connect as (...a: unknown[]) => Promise<pg.PoolClient>)(...args)
    // A read-only snapshot (db/snapshot.ts) of a replica-scoped request may run on the request's replica.
    const snapshot = snapshotReads.getStore()
    if (scope && snapshot && this.replicas && !scope.wrote && args.length === 0) {
      snapshot.onReplica = false
      return this.replicas.read(scope, primary, (pool) => {
        snapshot.onReplica = true
        return pool.connect()
      })
    }
    // A transaction runs on the primary; what the request reads after it must see what it did.
    if (scope) scope.wrote = true
    return primary()
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg.Pool's overloads
  override query(...args: any[]): any {
    const scope = this.replicas ? readScope.getStore() : undefined
    const primary = () => (super.query as (...a: unknown[]) => Promise<unknown>)(...args)
    if (!scope || !this.replicas || typeof args.at(-1) === 'function') return primary()
    const first = args[0] as string | { text?: string }
    if (scope.wrote || !isReadOnly(typeof first === 'string' ? first : first?.text)) {
      scope.wrote = true
      return primary()
    }
    return this.replicas.read(scope, primary, (pool) => (pool.query as (...a: unknown[]) => Promise<unknown>)(...args))
  }
}

/**
 * An async iterable that resumes in the read scope it was made in. A generator body resumes in the context
 * of whoever calls `next()` (for a streamed answer, the socket draining), so a streamed export would leave
 * its request's scope after the first chunk.
 */
export function inReadScope<T>(iterable: AsyncIterable<T>): AsyncIterable<T> {
  const scope = readScope.getStore()
  if (!scope) return iterable
  const it = iterable[Symbol.asyncIterator]()
  const iterator: AsyncIterator<T> = {
    next: () => readScope.run(scope, () => it.next()),
    return: (value?: unknown) =>
      readScope.run(scope, () => (it.return ? it.return(value) : Promise.resolve({ done: true as const, value }))),
  }
  return { [Symbol.asyncIterator]: () => iterator }
}
