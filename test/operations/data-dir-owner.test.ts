import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { LOCK_FILE } from '../../db/data-dir-lock.ts'
import { SOCKET_NAME } from '../../db/pglite-socket.ts'
import { runCli, runNode } from '../helpers/cli.ts'
import { freePort, startServer } from '../helpers/processes.ts'
import { seededDatabase } from '../helpers/seed.ts'

// One owner per PGlite folder, and the CLI through the owner's socket: real server, real CLI.
const skip = process.env.DATABASE_URL ? 'the embedded database only (DATABASE_URL is set)' : false

async function register(url: string, clientToken: string, email: string) {
  return fetch(`${url}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
    body: JSON.stringify({
      email,
      password: 'BigBob27!x',
      first_name: 'Sponge',
      last_name: 'Bob',
      toc_accepted_at: '2024-07-01T12:34:56Z',
      privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
    }),
  })
}

t.test('one process owns a PGlite folder; the CLI works through it while it serves', { skip }, async (t) => {
  const seeded = await seededDatabase([])
  const env: Record<string, string> = { ...seeded.env, JOBS_ENABLED: 'false', RATE_LIMIT_ENABLED: 'false' }
  const dataDir = env.DATA_DIR as string
  let server = await startServer(env)
  t.teardown(() => server.stop())
  t.ok(existsSync(join(dataDir, SOCKET_NAME)), 'the server serves its database on a socket in DATA_DIR')
  t.equal(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid, server.child.pid, 'and owns the folder')

  t.test('a second server on the folder fails at once, naming the folder and the holder', async (t) => {
    const second = await runNode(['--import', 'tsx', 'server.ts'], { ...env, PORT: String(await freePort()) })
    t.equal(second.code, 1)
    t.equal(
      second.stderr.split('\n')[0],
      `DATA_DIR ${dataDir} is in use by process ${server.child.pid} (an embedded database folder has one owner).`,
    )
    t.equal(second.stderr.split('\n')[1], 'Stop that process, or point DATA_DIR at another folder.')
    t.notMatch(second.stderr, /RuntimeError|Aborted|\n\s+at /, 'no WASM abort, no stack')
    const health = await fetch(`${server.url}/healthz`)
    t.equal(health.status, 200, 'the owner is unharmed')
  })

  t.test('a CLI write while the server runs is the server’s at once', async (t) => {
    const created = await runCli(['client', 'create', '--name', 'made while serving'], env)
    t.equal(created.code, 0, created.stderr)
    const client = JSON.parse(created.stdout) as { client_id: string; x_auth_token: string }
    const res = await register(server.url, client.x_auth_token, 'cli-made@example.com')
    t.equal(res.status, 200, 'the running server accepts the client the CLI just made')
    t.same(await res.json(), { status: 'success' })

    const listed = await runCli(['client', 'list'], env)
    t.equal(listed.code, 0, listed.stderr)
    const clients = JSON.parse(listed.stdout) as Array<Record<string, unknown>>
    t.same(
      clients.map((c) => c.name),
      ['made while serving', 'process test'],
      'client list shows every client, newest first',
    )
    t.same(Object.keys(clients[0]).sort(), ['client_id', 'created', 'name', 'revoked', 'rotated'])
    t.notMatch(listed.stdout, /secret|x_auth_token/, 'never a secret')
  })

  t.test('a socket client’s transaction and the server’s own writes never mix', async (t) => {
    const cli = new pg.Client({ host: dataDir, user: 'postgres', database: 'postgres' })
    await cli.connect()
    await cli.query('begin')
    await cli.query(`insert into client_apps (name, secret_hash) values ('rolled back', 'x')`)
    // The server writes while the CLI's transaction is open: it waits for the lease, and so is not
    // swept into the CLI's transaction (nor the CLI into its).
    const registering = register(server.url, seeded.clientToken, 'during-tx@example.com')
    let settled = false
    void registering.then(() => {
      settled = true
    })
    await new Promise((r) => setTimeout(r, 300))
    t.notOk(settled, 'the server’s write waits while a socket client holds a transaction open')
    await cli.query('rollback')
    const res = await registering
    t.equal(res.status, 200)
    const rows = await cli.query(
      `select (select count(*)::int from users where email = 'during-tx@example.com') as users,
              (select count(*)::int from client_apps where name = 'rolled back') as clients`,
    )
    t.same(rows.rows[0], { users: 1, clients: 0 }, 'the server’s row is kept, the rolled-back one is gone')

    // A client that disconnects mid-transaction leaves nothing open behind it.
    const quitter = new pg.Client({ host: dataDir, user: 'postgres', database: 'postgres' })
    quitter.on('error', () => {})
    await quitter.connect()
    await quitter.query('begin')
    await quitter.query(`insert into client_apps (name, secret_hash) values ('abandoned', 'x')`)
    ;(quitter as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
    const after = await register(server.url, seeded.clientToken, 'after-quit@example.com')
    t.equal(after.status, 200, 'the server goes on after a client vanished mid-transaction')
    t.equal(server.child.exitCode, null, server.output())
    const left = await cli.query(`select count(*)::int as n from client_apps where name = 'abandoned'`)
    t.equal(left.rows[0].n, 0, 'its transaction was rolled back')
    await cli.end()
  })

  t.test('after kill -9 the folder is recovered at the next start, data intact', async (t) => {
    const code = await server.stop('SIGKILL')
    t.equal(code, null, 'killed')
    t.ok(existsSync(join(dataDir, LOCK_FILE)), 'the dead owner left its lock file behind')
    server = await startServer(env)
    const res = await register(server.url, seeded.clientToken, 'after-kill@example.com')
    t.equal(res.status, 200, 'the restarted server owns the folder and serves')
    const listed = await runCli(['client', 'list'], env)
    t.equal(listed.code, 0, listed.stderr)
    t.match(listed.stdout, /made while serving/, 'what the CLI wrote before the crash is there')
  })

  t.test('stopped cleanly, the folder is free again: the CLI opens it itself', async (t) => {
    t.equal(await server.stop('SIGTERM'), 0)
    t.notOk(existsSync(join(dataDir, LOCK_FILE)), 'the lock is released on exit')
    t.notOk(existsSync(join(dataDir, SOCKET_NAME)), 'and the socket removed')
    const listed = await runCli(['client', 'list'], env)
    t.equal(listed.code, 0, listed.stderr)
    t.equal((JSON.parse(listed.stdout) as unknown[]).length, 2)
  })
})
