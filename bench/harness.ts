/**
 * What every benchmark starts and must stop, written once: server processes (through the one `startServer`
 * of test/helpers/processes.ts), killed at once when the run overruns its time limit, and clean-ups run
 * newest first at the end.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Database } from '../db/client.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { createUserRepository } from '../routes/user/repository.ts'
import { type ServerProcess, type StartOptions, startServer } from '../test/helpers/processes.ts'

async function onServer(baseUrl: string, statement: string) {
  const c = new pg.Client({ connectionString: baseUrl })
  await c.connect()
  try {
    await c.query(statement)
  } finally {
    await c.end()
  }
}

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/**
 * The settings every benchmark's development server starts from: a fresh JWT secret, a cheap bcrypt cost and no
 * rate limits (the bench measures the server, not its limits); a bench adds or overrides its own.
 */
export function benchServerEnv(): Record<string, string> {
  return {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    JWT_SECRET: randomBytes(32).toString('hex'),
    BCRYPT_COST: '4',
    RATE_LIMIT_ENABLED: 'false',
  }
}

/** The PostgreSQL server a benchmark makes its scratch database on (DATABASE_URL); exits with 2 without one. */
export function databaseUrlOrExit(): string {
  const url = process.env.DATABASE_URL
  if (!url) {
    console.error('DATABASE_URL (a PostgreSQL server to create a scratch database on) is required')
    process.exit(2)
  }
  return url
}

/**
 * Migrates `database`, then makes a client app and one verified user per name (`<name>@bench.local`, the
 * given password, hashed at cost 4): the client's x-auth-token and the users' ids by name.
 */
export async function seedBenchUsers(
  database: Database,
  names: string[],
  { password, timeZone }: { password: string; timeZone: string },
) {
  await database.migrate()
  const client = await createClientAppRepository(database.db).create('bench')
  const passwordHash = await hashPassword(password, 4)
  const users = createUserRepository(database.db)
  const ids: Record<string, string> = {}
  const now = new Date()
  for (const name of names) {
    const row = await users.create({
      email: `${name}@bench.local`,
      passwordHash,
      firstName: 'Bench',
      lastName: name,
      tocAcceptedAt: now,
      privacyPolicyAcceptedAt: now,
      emailVerifiedAt: now,
      timeZone,
    })
    if (!row) throw new Error('user exists')
    ids[name] = row.id
  }
  return { token: client.x_auth_token, ids }
}

export function benchHarness(timeoutS: number) {
  const servers = new Set<ServerProcess>()
  const cleanups: Array<() => Promise<void> | void> = []
  let step = 'start'
  let finished = false
  const deadline = setTimeout(() => {
    console.error(`benchmark exceeded ${timeoutS} s, stopping (last step: ${step})`)
    for (const s of servers) s.child.kill('SIGKILL')
    process.exit(1)
  }, timeoutS * 1000)
  deadline.unref()
  // The event loop drains while the benchmark still awaits: a promise that nothing will ever settle (no socket,
  // timer or child left to settle it). Node would exit quietly (13, or 0 behind a pipe); a benchmark fails loudly.
  process.on('beforeExit', () => {
    if (finished) return
    console.error(
      `benchmark failed: the event loop drained while awaiting a promise that never settles (last step: ${step})`,
    )
    process.exit(1)
  })

  return {
    /** Runs at the end (or at `cleanUp`), newest first. */
    cleanups,

    /** Names what the benchmark does now (reported when it overruns or hangs). */
    step(name: string) {
      step = name
    },

    /** The benchmark is complete: the event loop may drain now. */
    finish() {
      finished = true
    },

    /** A server process on a free loopback port, stopped by `cleanUp`. */
    async server(env: Record<string, string>, options?: StartOptions): Promise<ServerProcess> {
      const server = await startServer(env, options)
      servers.add(server)
      let stopping = false
      // A server dying under the benchmark says so, with its last output, instead of failing later requests.
      server.child.once('exit', (code, signal) => {
        if (stopping) return
        console.error(
          `server ${server.url} exited during the benchmark (${signal ?? code}, step: ${step}); its last output:\n${server.output().slice(-4000)}`,
        )
      })
      // A stop asked for, by the benchmark or at the end, is not a death.
      const stop = server.stop.bind(server)
      server.stop = async (signal) => {
        stopping = true
        const code = await stop(signal)
        servers.delete(server)
        return code
      }
      cleanups.push(async () => {
        await server.stop()
      })
      return server
    },

    /** A scratch database `<prefix>_<time>` on the PostgreSQL server at `baseUrl`, dropped by `cleanUp`; its URL. */
    async scratchDatabase(baseUrl: string, prefix: string): Promise<string> {
      const name = `${prefix}_${Date.now().toString(36)}`
      await onServer(baseUrl, `create database ${name}`)
      cleanups.push(() => onServer(baseUrl, `drop database if exists ${name} with (force)`))
      const url = new URL(baseUrl)
      url.pathname = `/${name}`
      return url.toString()
    },

    /** Runs the clean-ups registered so far, newest first; a failing one is logged, the others still run. */
    async cleanUp() {
      if (!step.startsWith('clean-up')) step = `clean-up (after ${step})`
      for (const c of cleanups.splice(0).reverse()) {
        try {
          await c()
        } catch (err) {
          console.error('cleanup:', err)
        }
      }
    },
  }
}
