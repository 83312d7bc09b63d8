import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { buildApp } from '../../app.ts'
import { ConfigError, loadConfig } from '../../plugins/config.ts'
import { parseTrustProxy } from '../../plugins/trust-proxy.ts'
import { TEST_ENV, testConfig } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { createClient, createUser } from '../helpers/fixtures.ts'

t.test('TRUST_PROXY takes what Fastify takes', async (t) => {
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy('TRUE'), true)
  t.equal(parseTrustProxy('2'), 2)
  t.same(parseTrustProxy('10.0.0.1, 10.1.0.0/16,loopback'), ['10.0.0.1', '10.1.0.0/16', 'loopback'])
  t.same(parseTrustProxy('2001:db8::/32'), ['2001:db8::/32'])
  t.equal(loadConfig({ ...TEST_ENV }).TRUST_PROXY, false, 'off by default')
  t.same(loadConfig({ ...TEST_ENV, TRUST_PROXY: '192.168.0.0/24' }).TRUST_PROXY, ['192.168.0.0/24'])
  for (const bad of ['yes', '10.0.0.1/33', '10.0.0.300', 'proxy.example.com', '10.0.0.0/8/1']) {
    t.throws(() => loadConfig({ ...TEST_ENV, TRUST_PROXY: bad }), ConfigError, bad)
    try {
      loadConfig({ ...TEST_ENV, TRUST_PROXY: bad })
    } catch (err) {
      t.match((err as Error).message, /TRUST_PROXY: ".+" is not true, false, a hop count/)
    }
  }
})

async function appWithLog(t: Test, env: Record<string, string>) {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  const database = await freshDatabase()
  const app = await buildApp({ config: testConfig(env), database, logger: { level: 'warn', stream } })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.ready()
  return { app, lines }
}

/** The IP the login history recorded for a login sent with these headers and peer address. */
async function recordedIp(
  app: Awaited<ReturnType<typeof appWithLog>>['app'],
  remoteAddress: string,
  xff: string | undefined,
) {
  const client = await createClient(app)
  const user = await createUser(app)
  const res = await app.inject({
    method: 'POST',
    url: '/v2/auth/login',
    remoteAddress,
    headers: { 'x-auth-token': client.x_auth_token, ...(xff ? { 'x-forwarded-for': xff } : {}) },
    payload: { email: user.email, password: user.password },
  })
  const history = await app.inject({
    method: 'GET',
    url: '/v1/users/me/auth-history',
    headers: { authorization: `Bearer ${res.json().access}` },
  })
  return history.json().data[0].ip as string
}

t.test('off: X-Forwarded-For is ignored and one warning is logged, not one per request', async (t) => {
  const { app, lines } = await appWithLog(t, {})
  t.equal(await recordedIp(app, '10.0.0.7', '203.0.113.9'), '10.0.0.7', 'the peer address, not the header')
  await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-forwarded-for': '203.0.113.10' } })
  await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-forwarded-for': '203.0.113.11' } })
  const warnings = lines.filter((l) => l.includes('TRUST_PROXY is off'))
  t.equal(warnings.length, 1, 'said once')
  t.equal(JSON.parse(warnings[0]).level, 40, 'at warn level')
  t.notMatch(warnings[0], /203\.0\.113/, 'no address in the line')
})

t.test('off, and no proxy header: no warning', async (t) => {
  const { app, lines } = await appWithLog(t, {})
  await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(lines.filter((l) => l.includes('TRUST_PROXY')).length, 0)
})

t.test('a hop count trusts that many proxies from the right', async (t) => {
  const { app, lines } = await appWithLog(t, { TRUST_PROXY: '1' })
  t.equal(await recordedIp(app, '10.0.0.7', '198.51.100.1, 203.0.113.9'), '203.0.113.9')
  t.equal(lines.filter((l) => l.includes('TRUST_PROXY')).length, 0, 'no warning when trusted')
})

t.test('a list trusts only those proxies', async (t) => {
  const { app } = await appWithLog(t, { TRUST_PROXY: '10.0.0.0/8' })
  t.equal(await recordedIp(app, '10.0.0.7', '203.0.113.9'), '203.0.113.9', 'from a listed proxy')
  t.equal(await recordedIp(app, '192.0.2.5', '203.0.113.9'), '192.0.2.5', 'from anyone else the header is ignored')
})
