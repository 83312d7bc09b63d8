import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli.ts'

// The real CLI on an embedded database folder of its own; each command boots and migrates: slow, so generous.
t.setTimeout(600_000)

t.test('npm run cli -- webhook create / list / rotate / disable / enable / delete', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-webhooks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { DATA_DIR: dir, LOG_LEVEL: 'silent', NODE_ENV: 'development' }
  const cli = async (...args: string[]) => {
    const res = await runCli(args, env)
    if (res.code !== 0) throw new Error(`cli ${args.join(' ')}: ${res.code} ${res.stderr}`)
    return JSON.parse(res.stdout)
  }
  const client = await cli('client', 'create', '--name', 'partner')
  // 192.0.2.10 is a documentation address: refused as a target, and no DNS is needed to know it.
  const refused = await runCli(
    ['webhook', 'create', '--client', client.client_id, '--url', 'https://192.0.2.10/h', '--events', 'checkin.created'],
    env,
  )
  t.equal(refused.code, 1)
  t.match(refused.stderr, /--url resolves to a private/)
  const badType = await runCli(
    ['webhook', 'create', '--client', client.client_id, '--url', 'https://[2606:4700:4700::1111]/h', '--events', 'x.y'],
    env,
  )
  t.match(badType, { code: 1, stderr: /unknown event types: x\.y/ })

  const created = await cli(
    'webhook',
    'create',
    '--client',
    client.client_id,
    '--url',
    'https://[2606:4700:4700::1111]/hooks',
    '--events',
    'checkin.created,user.deleted',
  )
  t.match(created, {
    id: String,
    client_id: client.client_id,
    event_types: ['checkin.created', 'user.deleted'],
    status: 'active',
    secret: /^whsec_/,
  })
  const listed = await cli('webhook', 'list', '--client', client.client_id)
  t.same(
    listed.map((s: { id: string }) => s.id),
    [created.id],
  )
  t.notOk('secret' in listed[0])
  const rotated = await cli('webhook', 'rotate', '--id', created.id, '--overlap-s', '0')
  t.not(rotated.secret, created.secret)
  t.match(await cli('webhook', 'disable', '--id', created.id), { status: 'disabled', disabled_reason: 'admin' })
  t.match(await cli('webhook', 'enable', '--id', created.id), { status: 'active', disabled_reason: null })
  t.same(await cli('webhook', 'delete', '--id', created.id), { status: 'success' })
  t.same(await cli('webhook', 'list', '--client', client.client_id), [])
  const gone = await runCli(['webhook', 'rotate', '--id', created.id], env)
  t.match(gone, { code: 1, stderr: /no client app's subscription has this id/ })
})
