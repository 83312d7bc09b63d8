import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'

// upgrade-insecure-requests, HSTS and COOP only for requests that came over https (the socket's or a
// trusted proxy's).
t.test('https-only headers are sent over https only', async (t) => {
  const app = await buildTestApp(t)
  const trusting = await buildTestApp(t, { env: { TRUST_PROXY: 'true' } })
  const csp = async (a: typeof app, url: string, headers: Record<string, string> = {}) =>
    String((await a.inject({ url, headers })).headers['content-security-policy'])

  for (const url of ['/healthz', '/docs', '/docs/static/index.html', '/docs/json']) {
    const plain = await csp(app, url)
    t.match(plain, /default-src 'self'/, `${url}: the policy is there`)
    t.notMatch(plain, /upgrade-insecure-requests/, `${url}: not over plain http`)
    t.notMatch(
      await csp(app, url, { 'x-forwarded-proto': 'https' }),
      /upgrade-insecure-requests/,
      `${url}: an untrusted X-Forwarded-Proto changes nothing`,
    )
    t.match(
      await csp(trusting, url, { 'x-forwarded-proto': 'https' }),
      /upgrade-insecure-requests/,
      `${url}: behind a trusted TLS proxy it is sent`,
    )
  }
  const plain = await app.inject({ url: '/healthz' })
  t.equal(plain.headers['strict-transport-security'], undefined, 'no HSTS over http (RFC 6797 §7.2)')
  t.equal(plain.headers['cross-origin-opener-policy'], undefined, 'no COOP on an untrustworthy origin')
  t.equal(plain.headers['x-content-type-options'], 'nosniff', 'the other headers stay')
  const tls = await trusting.inject({ url: '/healthz', headers: { 'x-forwarded-proto': 'https' } })
  t.match(tls.headers['strict-transport-security'], /max-age=/)
  t.equal(tls.headers['cross-origin-opener-policy'], 'same-origin')
})
