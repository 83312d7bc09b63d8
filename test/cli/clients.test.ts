import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { sessions, users } from '../../db/schema/index.ts'
import { createClientAppRepository } from '../../routes/clients/repository.ts'
import { runCli } from '../helpers/cli.ts'

// The operator CLI on an embedded database of its own (a PGlite folder is for one process at a time).
// Each command boots the CLI and migrates the folder: slow on a shared machine, so a generous limit.
t.setTimeout(600_000)

t.test('npm run cli -- client rotate / revoke', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'))
  const env = { DATA_DIR: dir, LOG_LEVEL: 'silent', NODE_ENV: 'development' }
  const cli = async (...args: string[]) => {
    const { code, stdout, stderr } = await runCli(args, env)
    if (code !== 0) throw new Error(`cli ${args.join(' ')} exited ${code}: ${stderr}`)
    return JSON.parse(stdout)
  }
  const withDb = async <T>(f: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>) => {
    const database = await openDatabase({ dataDir: dir })
    try {
      return await f(database.db)
    } finally {
      await database.close()
    }
  }

  const created = await cli('client', 'create', '--name', 'iOS')
  const rotated = await cli('client', 'rotate', '--id', created.client_id, '--overlap-s', '600')
  t.equal(rotated.client_id, created.client_id)
  t.equal(rotated.previous_secret_valid_for_s, 600)
  t.not(rotated.secret, created.secret)
  await withDb(async (db) => {
    const clients = createClientAppRepository(db)
    t.ok(await clients.verify(created.client_id, created.secret), 'the old secret overlaps')
    t.ok(await clients.verify(created.client_id, rotated.secret))
    // A session opened through this app, to see the revocation end it.
    const [user] = await db
      .insert(users)
      .values({
        email: 'cli@example.com',
        passwordHash: 'x',
        firstName: 'C',
        lastName: 'L',
        tocAcceptedAt: new Date(),
        privacyPolicyAcceptedAt: new Date(),
      })
      .returning()
    await db.insert(sessions).values({
      userId: user.id,
      clientId: created.client_id,
      refreshJti: 'j',
      ip: '127.0.0.1',
      expiresAt: new Date(Date.now() + 3600_000),
    })
  })
  const revoked = await cli('client', 'revoke', '--id', created.client_id)
  t.same(revoked, { status: 'success', client_id: created.client_id, sessions_revoked: 1 })
  await withDb(async (db) => {
    const [row] = await db.select().from(sessions)
    t.equal(row.revokedReason, 'client_revoked', 'its sessions end with it')
  })
})
