import t from 'tap'
import { loadConfig } from '../../plugins/config.ts'
import { attempt } from '../../routes/webhooks/delivery.ts'
import { type Resolver, TargetRefused, checkTarget, isPublicAddress } from '../../routes/webhooks/targets.ts'
import { TEST_ENV, buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { startReceiver } from '../helpers/webhooks.ts'

/** One address of every refused range, and the range's name. */
const PRIVATE = [
  ['0.0.0.0', 'this network'],
  ['10.1.2.3', 'RFC 1918'],
  ['100.64.0.1', 'CGNAT'],
  ['100.100.100.200', 'CGNAT (Alibaba metadata)'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'link-local: cloud metadata'],
  ['172.16.0.1', 'RFC 1918'],
  ['172.31.255.255', 'RFC 1918'],
  ['192.0.0.8', 'IETF'],
  ['192.0.2.1', 'documentation'],
  ['192.168.1.1', 'RFC 1918'],
  ['198.18.0.1', 'benchmarking'],
  ['224.0.0.1', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:8.8.8.8', 'IPv4-mapped (any)'],
  ['64:ff9b::a00:1', 'NAT64'],
  ['2001:db8::1', 'documentation'],
  ['2002:7f00:1::', '6to4 of 127.0.0.1'],
  ['fc00::1', 'ULA'],
  ['fd00:ec2::254', 'ULA: AWS metadata'],
  ['fe80::1', 'link-local'],
  ['ff02::1', 'multicast'],
] as const
const PUBLIC = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']

const fakeDns =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const addresses = table[host]
    if (!addresses) throw new Error('ENOTFOUND')
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }

t.test('every private, loopback, link-local, CGNAT, metadata and special range is refused', async (t) => {
  for (const [address, what] of PRIVATE) t.notOk(isPublicAddress(address), `${address} (${what})`)
  for (const address of PUBLIC) t.ok(isPublicAddress(address), `${address} is public`)
  t.notOk(isPublicAddress('not-an-ip'))
})

t.test('checkTarget: URLs, literals, and names that resolve to a private address', async (t) => {
  const resolve = fakeDns({
    'public.example': ['93.184.216.34'],
    'rebind.example': ['10.0.0.5'],
    'mixed.example': ['93.184.216.34', '192.168.1.10'],
    'metadata.example': ['169.254.169.254'],
    'v6.example': ['2606:4700:4700::1111'],
    'ula.example': ['fd12:3456::1'],
  })
  const policy = { allowPrivate: false, resolve }
  const refused = async (url: string, problem: RegExp) => {
    await t.rejects(checkTarget(url, policy), { name: 'TargetRefused', message: problem }, url)
  }
  await refused('http://public.example/hook', /https/)
  await refused('https://user:pw@public.example/hook', /user name or password/)
  await refused('https://localhost/hook', /loopback/)
  await refused('https://api.localhost/hook', /loopback/)
  await refused('https://nowhere.example/hook', /does not resolve/)
  for (const host of ['rebind.example', 'mixed.example', 'metadata.example', 'ula.example']) {
    await refused(`https://${host}/hook`, /private/)
  }
  for (const [address] of PRIVATE) {
    const literal = address.includes(':') ? `[${address}]` : address
    await refused(`https://${literal}/hook`, /private/)
  }
  t.match(await checkTarget('https://public.example:8443/hook?x=1', policy), {
    address: { address: '93.184.216.34', family: 4 },
  })
  t.match(await checkTarget('https://v6.example/hook', policy), { address: { family: 6 } })
  t.match(await checkTarget('https://[2606:4700:4700::1111]/hook', policy), { address: { family: 6 } })
  const dev = { allowPrivate: true, resolve }
  t.match(await checkTarget('http://rebind.example/hook', dev), { address: { address: '10.0.0.5' } })
  t.ok(new TargetRefused('x') instanceof Error)
})

t.test('the API refuses private targets at subscription time and at delivery (DNS rebinding)', async (t) => {
  const app = await buildTestApp(t)
  const table: Record<string, string[]> = { 'hooks.example': ['93.184.216.34'], 'inside.example': ['10.0.0.7'] }
  app.webhooks.setResolver(fakeDns(table))
  const alice = await userWithToken(app)
  for (const url of [
    'http://hooks.example/x',
    'https://127.0.0.1/x',
    'https://[::1]/x',
    'https://169.254.169.254/latest/meta-data',
    'https://[fd00:ec2::254]/x',
    'https://[::ffff:10.0.0.1]/x',
    'https://100.64.1.1/x',
    'https://inside.example/x',
  ]) {
    const res = await alice.call('POST', '/v1/webhooks', { url, event_types: ['checkin.created'] })
    t.match(res, { status: 400, body: { error: 'validation_failed', details: [{ field: 'url' }] } }, url)
  }
  const ok = await alice.call('POST', '/v1/webhooks', {
    url: 'https://hooks.example/x',
    event_types: ['checkin.created'],
  })
  t.equal(ok.status, 201)
  const moved = await alice.call('PATCH', `/v1/webhooks/${ok.body.id}`, { url: 'https://inside.example/x' })
  t.match(moved, { status: 400, body: { details: [{ field: 'url' }] } }, 'an update is checked too')

  // The name now answers a private address (rebinding): the delivery refuses it without connecting.
  table['hooks.example'] = ['127.0.0.1']
  await alice.call('POST', '/v1/checkins', { mood: 3 })
  await app.webhooks.flush()
  const log = await alice.call('GET', `/v1/webhooks/${ok.body.id}/attempts`)
  t.match(log.body.data, [{ attempt: 1, status_code: null, error: 'refused_address' }])
})

t.test(
  'the delivery connects to the address it checked, never a second lookup; redirects are not followed',
  async (t) => {
    const receiver = await startReceiver()
    t.teardown(() => receiver.close())
    // `hooks.invalid` resolves nowhere in real DNS: reaching the receiver proves the pinned address was used.
    const policy = { allowPrivate: true, resolve: fakeDns({ 'hooks.invalid': ['127.0.0.1'] }) }
    const ok = await attempt(
      `http://hooks.invalid:${receiver.port}/hook`,
      { 'webhook-id': 'msg_1' },
      '{}',
      policy,
      2000,
    )
    t.match(ok, { statusCode: 200, error: null })
    t.equal(receiver.deliveries.length, 1)
    t.equal(receiver.deliveries[0].headers.host, `hooks.invalid:${receiver.port}`)
    receiver.answer(302)
    const redirect = await attempt(`http://hooks.invalid:${receiver.port}/hook`, {}, '{}', policy, 2000)
    t.match(redirect, { statusCode: 302, error: 'redirect' })
  },
)

t.test('WEBHOOK_ALLOW_PRIVATE_TARGETS is refused in production', async (t) => {
  t.throws(
    () =>
      loadConfig({
        ...TEST_ENV,
        NODE_ENV: 'production',
        DATABASE_URL: 'postgres://db/x',
        MAIL_TRANSPORT: 'log',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      }),
    /WEBHOOK_ALLOW_PRIVATE_TARGETS=true is for development only/,
  )
  t.doesNotThrow(() => loadConfig({ ...TEST_ENV, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' }))
})
