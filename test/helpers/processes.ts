import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
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

/** A throw-away PostgreSQL cluster of the test's own, which it may stop and start at will. */
export async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'nowatch-pg-'))
  if (isRoot) execFileSync('chown', ['postgres', dir])
  const port = await freePort()
  const data = join(dir, 'data')
  asPostgres(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'])
  const start = () =>
    asPostgres(join(PG_BIN, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'pg.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ])
  const stop = (mode: 'fast' | 'immediate' = 'fast') =>
    asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop'])
  start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy() {
      try {
        stop('immediate')
      } catch {}
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
      if (child.exitCode !== null) return Promise.resolve(child.exitCode)
      return new Promise((resolve) => {
        child.once('exit', (code) => resolve(code))
        child.kill(signal)
      })
    },
  }
}
