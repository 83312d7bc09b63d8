import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { parseEnv } from 'node:util'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { REDACT_PATHS, buildApp } from '../../app.ts'
import { queryRows } from '../../db/client.ts'
import { LOCK_FILE } from '../../db/data-dir-lock.ts'
import { ConfigSchema, loadConfig } from '../../plugins/config.ts'
import { testConfig } from '../helpers/app.ts'
import { runNode } from '../helpers/cli.ts'
import { freshDatabase } from '../helpers/database.ts'
import { createClient, createUser } from '../helpers/fixtures.ts'
import { freePort } from '../helpers/processes.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const server = (env: Record<string, string>) => runNode(['--import', 'tsx', 'server.ts'], env)
const lines = (s: string) => s.split('\n')
const tempDir = () => mkdtempSync(join(tmpdir(), 'nowatch-start-'))

// Every start-up failure an operator can cause: plain lines naming the setting, exit code 1, no stack.
t.test('start-up failures are plain lines and exit 1', async (t) => {
  t.test('a NODE_ENV that does not exist lists the allowed values', async (t) => {
    const res = await server({ NODE_ENV: 'staging', DATA_DIR: tempDir() })
    t.equal(res.code, 1)
    t.same(lines(res.stderr).slice(0, 2), [
      'Invalid configuration:',
      '  NODE_ENV: must be one of development, production, test',
    ])
    t.notMatch(res.stderr, /\n\s+at /)
  })

  t.test('an unreachable DATABASE_URL names the variable and where, never the password', async (t) => {
    const port = await freePort()
    const res = await server({ DATABASE_URL: `postgres://nowatch:s3cret-pw@127.0.0.1:${port}/app` })
    t.equal(res.code, 1)
    t.same(lines(res.stderr).slice(0, 2), [
      `Cannot reach PostgreSQL at 127.0.0.1:${port}/app (DATABASE_URL): nothing accepts connections there.`,
      'Check that the database server runs and that DATABASE_URL is right.',
    ])
    t.notMatch(res.stderr + res.stdout, /s3cret-pw|ECONNREFUSED|\n\s+at /)
  })

  t.test('a busy port names PORT and HOST, and releases the data folder', async (t) => {
    const squatter = createServer()
    const port = await new Promise<number>((resolve) =>
      squatter.listen(0, '127.0.0.1', () => resolve((squatter.address() as { port: number }).port)),
    )
    t.teardown(() => squatter.close())
    const dataDir = tempDir()
    const res = await server({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir })
    t.equal(res.code, 1)
    t.same(lines(res.stderr).slice(0, 2), [
      `Cannot listen on HOST=127.0.0.1 PORT=${port}: the port is already in use (another server?).`,
      'Stop that process or set PORT to a free port.',
    ])
    t.notMatch(res.stderr, /EADDRINUSE|\n\s+at /)
    t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'the folder is not left locked')
  })

  t.test('production without SMTP_URL refuses to start unless MAIL_TRANSPORT=log is chosen', async (t) => {
    const env = { NODE_ENV: 'production', JWT_SECRET: 'j'.repeat(40), DATABASE_URL: 'postgres://x@127.0.0.1:1/x' }
    const res = await server(env)
    t.equal(res.code, 1)
    t.same(lines(res.stderr).slice(0, 2), [
      'Invalid configuration:',
      '  SMTP_URL is required when NODE_ENV=production (or set MAIL_TRANSPORT=log to keep mail in the outbox table and log)',
    ])
    t.doesNotThrow(() => loadConfig({ ...env, MAIL_TRANSPORT: 'log' }), 'chosen on purpose, it is allowed')
    t.doesNotThrow(() => loadConfig({ ...env, SMTP_URL: 'smtp://mail.example:25' }))
    t.throws(() => loadConfig({ NODE_ENV: 'development', MAIL_TRANSPORT: 'smtp', DATA_DIR: tempDir() }), {
      message: /SMTP_URL is required when MAIL_TRANSPORT=smtp/,
    })
  })
})

t.test('in production, mail in the log names its kind, never the address, code or link', async (t) => {
  const logged: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logged.push(chunk.toString())
      cb()
    },
  })
  const database = await freshDatabase()
  const config = { ...testConfig({ MAIL_TRANSPORT: 'log' }), NODE_ENV: 'production' as const }
  const app = await buildApp({
    config,
    database,
    logger: { level: 'trace', stream, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
  })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.ready()
  const client = await createClient(app)
  const user = await createUser(app)
  const res = await app.inject({
    method: 'POST',
    url: '/v1/auth/forgot_password',
    headers: { 'x-auth-token': client.x_auth_token },
    payload: { email: user.email },
  })
  t.equal(res.statusCode, 200)
  // The reset mail is queued after the answer (the same work for known and unknown addresses).
  await app.afterAnswer.idle()
  t.same(await app.mailer.flush(), { sent: 1, failed: 0 })
  const rows = await queryRows<{ text: string }>(app.database.db, sql`select text from mail_outbox`)
  const code = rows[0].text.match(/code is: (\d{6})/)?.[1]
  t.ok(code, 'the mail (in its table) carries a code')
  const log = logged.join('')
  t.match(log, /"msg":"dev outbox: message kept in mail_outbox"/, 'the message is logged')
  t.match(log, /"kind":"password_reset"/)
  t.notOk(log.includes(code as string), 'never its code')
  t.notOk(log.toLowerCase().includes(user.email.toLowerCase()), 'never its address')
})

t.test('.env.example lists every setting with its default, and is itself a valid configuration', async (t) => {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8')
  // Every setting is a commented line `# KEY=default`; uncommented, the file must be a valid .env.
  const example = parseEnv(text.replace(/^# (?=[A-Z][A-Z0-9_]*=)/gm, '').replace(/\s+#.*$/gm, ''))
  for (const key of Object.keys(ConfigSchema.properties)) {
    t.ok(key in example, `${key} is listed`)
    const def = (ConfigSchema.properties as Record<string, { default?: unknown }>)[key].default
    t.equal(example[key], def === undefined ? '' : String(def), `${key} shows its default`)
  }
  t.doesNotThrow(() => loadConfig({ ...example, DATA_DIR: tempDir() }))
})

t.test('stopping `npm start` stops the server (no orphan)', async (t) => {
  const dataDir = tempDir()
  const port = await freePort()
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', JOBS_ENABLED: 'false' },
    stdio: 'ignore',
  })
  const deadline = Date.now() + 60_000
  while (
    !(await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline || npm.exitCode !== null) throw new Error('npm start did not serve')
    await new Promise((r) => setTimeout(r, 200))
  }
  // The process that owns the folder is the node server; npm is its parent (or is it, after exec).
  const serverPid = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid as number
  const exited = new Promise((resolve) => npm.once('exit', resolve))
  npm.kill('SIGTERM')
  await exited
  const gone = Date.now() + 20_000
  let alive = true
  while (alive && Date.now() < gone) {
    try {
      process.kill(serverPid, 0)
      await new Promise((r) => setTimeout(r, 100))
    } catch {
      alive = false
    }
  }
  t.notOk(alive, `the node server (pid ${serverPid}) is gone once npm start is stopped`)
  if (alive) process.kill(serverPid, 'SIGKILL')
  t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'and it shut down cleanly (folder released)')
})
