import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const PG_BIN = process.env.PGBIN ?? '/usr/lib/postgresql/15/bin'
export const HAVE_PG_BINARIES = existsSync(join(PG_BIN, 'pg_ctl'))

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const isRoot = process.getuid?.() === 0
/** PostgreSQL refuses to run as root: CI runs as root, so the cluster runs as `postgres`. */
function asPostgres(cmd: string, args: string[]) {
  return isRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' })
    : execFileSync(cmd, args, { stdio: 'pipe' })
}

/**
 * Start/stop of one PostgreSQL data directory on `port`, its socket in `socketDir`, loopback only, fsync off:
 * the set-up a cluster of a test's own and its replicas share.
 */
function pgControl(data: string, port: number, socketDir: string, logFile: string) {
  const start = () =>
    asPostgres(join(PG_BIN, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      logFile,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ])
  const stop = (mode: 'fast' | 'immediate' = 'fast') =>
    asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop'])
  const kill = () => {
    try {
      stop('immediate')
    } catch {}
  }
  start()
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, start, stop, kill }
}

/** A throw-away PostgreSQL cluster of the test's own, which it may stop and start at will. */
export async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'nowatch-pg-'))
  if (isRoot) execFileSync('chown', ['postgres', dir])
  const port = await freePort()
  const data = join(dir, 'data')
  asPostgres(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'])
  const { kill, ...control } = pgControl(data, port, dir, join(dir, 'pg.log'))
  return {
    ...control,
    dir,
    data,
    destroy() {
      kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A streaming replica of a cluster of the test's own (`pg_basebackup -R`: the standby.signal and
 * primary_conninfo written for it), on another port; it may be killed and started again.
 */
export async function startReplica(primary: { port: number; dir: string }) {
  const port = await freePort()
  const data = join(primary.dir, `replica-${port}`)
  asPostgres(join(PG_BIN, 'pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-D',
    data,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
  ])
  const { kill, ...control } = pgControl(data, port, primary.dir, join(primary.dir, `replica-${port}.log`))
  return { ...control, destroy: kill }
}

export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer'
export const HAVE_PGBOUNCER = existsSync(PGBOUNCER_BIN)

/**
 * The PgBouncer settings the server is tested behind (.ci/run writes the same): transaction pooling,
 * round-robin server connections (consecutive transactions of one client land on different server
 * connections, as on a busy pooler, so session state leaking across transactions shows up), and short
 * waits so an outage answers fast instead of queueing clients for the default 120 s.
 */
export function pgBouncerIni(opts: { dir: string; port: number; pgPort: number }): string {
  return [
    '[databases]',
    `* = host=127.0.0.1 port=${opts.pgPort}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${opts.port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(opts.dir, 'userlist.txt')}`,
    'pool_mode = transaction',
    'server_round_robin = 1',
    'max_client_conn = 1000',
    'default_pool_size = 20',
    'query_wait_timeout = 5',
    'server_connect_timeout = 3',
    'server_login_retry = 1',
    'ignore_startup_parameters = extra_float_digits',
    `logfile = ${join(opts.dir, 'pgbouncer.log')}`,
    `pidfile = ${join(opts.dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n')
}

/** A PgBouncer of the test's own in front of a PostgreSQL on `pgPort` (loopback); answers its URL base. */
export async function startPgBouncer(pgPort: number) {
  const dir = mkdtempSync(join(tmpdir(), 'nowatch-pgbouncer-'))
  const port = await freePort()
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n')
  writeFileSync(join(dir, 'pgbouncer.ini'), pgBouncerIni({ dir, port, pgPort }))
  if (isRoot) execFileSync('chown', ['-R', 'postgres', dir])
  const child = isRoot
    ? spawn('runuser', ['-u', 'postgres', '--', PGBOUNCER_BIN, join(dir, 'pgbouncer.ini')], { stdio: 'ignore' })
    : spawn(PGBOUNCER_BIN, [join(dir, 'pgbouncer.ini')], { stdio: 'ignore' })
  const deadline = Date.now() + 20_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.end()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('pgbouncer did not start')
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    port,
    /** The pooler's URL for one database. */
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async destroy() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface ServerProcess {
  url: string
  child: ChildProcess
  output: () => string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export interface StartOptions {
  /** The script, from the repository root (default `server.ts`, as `npm start`). */
  script?: string
  /** The path polled until it answers 2xx (default `/healthz`). */
  ready?: string
  /** false: the child gets only PATH, HOST, PORT and `env`, none of the test defaults (benchmarks set their own). */
  testDefaults?: boolean
}

/**
 * The real server (`server.ts`) as a child process on a free loopback port, once it answers `ready`.
 * The one way tests and benchmarks start a server process.
 */
export async function startServer(env: Record<string, string>, options: StartOptions = {}): Promise<ServerProcess> {
  const { script = 'server.ts', ready = '/healthz', testDefaults = true } = options
  // A caller that must know the port before the start (PUBLIC_URL naming it) passes PORT itself.
  const port = env.PORT ? Number(env.PORT) : await freePort()
  let out = ''
  const defaults = testDefaults
    ? {
        NODE_ENV: 'production',
        JWT_SECRET: 'process-test-secret-process-test-secret-0123',
        LOG_LEVEL: 'warn',
        BCRYPT_COST: '4',
        // Production wants its mail transport chosen: the dev outbox, unless a test brings its SMTP server.
        ...(env.SMTP_URL ? {} : { MAIL_TRANSPORT: 'log' }),
      }
    : {}
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...defaults, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (c) => {
    out += c
  })
  child.stderr?.on('data', (c) => {
    out += c
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited (${child.exitCode}): ${out}`)
    try {
      const res = await fetch(`${url}${ready}`)
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`${script} did not start: ${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    child,
    output: () => out,
    stop(signal = 'SIGTERM') {
      // A child ended by a signal (an OOM kill, an abort) has signalCode set and exitCode null; its 'exit' is past.
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
      return new Promise((resolve) => {
        child.once('exit', (code) => resolve(code))
        child.kill(signal)
      })
    },
  }
}
