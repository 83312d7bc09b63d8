import { and, eq, sql } from 'drizzle-orm'
import t from 'tap'
import { mailOutbox } from '../../db/schema/index.ts'
import { deviceOf, networkOf } from '../../routes/auth/new-login.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createUser, sharedClient } from '../helpers/fixtures.ts'

const CHROME_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
const CHROME_WINDOWS_NEWER = CHROME_WINDOWS.replace('120.0.0.0', '131.0.0.0')
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'

t.test('what counts as the same network and device', async (t) => {
  t.equal(networkOf('203.0.113.7'), '203.0.113.0/24')
  t.equal(networkOf('::ffff:203.0.113.200'), '203.0.113.0/24', 'IPv4-mapped')
  t.equal(networkOf('2001:db8:abcd:12::1'), '2001:db8:abcd::/48')
  t.equal(networkOf('2001:0db8:abcd:ffff:1:2:3:4'), '2001:db8:abcd::/48')
  t.equal(networkOf('::1'), '0:0:0::/48')
  t.equal(networkOf('not an ip'), null)
  t.equal(deviceOf(CHROME_WINDOWS), 'Chrome on Windows')
  t.equal(deviceOf(CHROME_WINDOWS_NEWER), deviceOf(CHROME_WINDOWS), 'a browser update is no new device')
  t.equal(deviceOf(SAFARI_IPHONE), 'Mobile Safari on iOS')
})

t.test('a login from a new device or network e-mails the account', async (t) => {
  const app = await buildTestApp(t)
  const client = await sharedClient(app)
  const user = await createUser(app)
  const login = async (userAgent: string, remoteAddress: string) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': client, 'user-agent': userAgent },
      remoteAddress,
      payload: { email: user.email, password: user.password },
    })
    t.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  const mails = async () =>
    app.db
      .select({ text: mailOutbox.text })
      .from(mailOutbox)
      .where(and(eq(mailOutbox.to, user.email), eq(mailOutbox.kind, 'new_login')))
      .orderBy(sql`${mailOutbox.createdAt}`)

  await login(CHROME_WINDOWS, '203.0.113.7')
  t.same(await mails(), [], 'the first login of an account is not new')
  await login(CHROME_WINDOWS_NEWER, '203.0.113.99')
  t.same(await mails(), [], 'the same device kind on the same /24 is known')

  await login(SAFARI_IPHONE, '203.0.113.7')
  let sent = await mails()
  t.equal(sent.length, 1, 'a new device kind')
  t.match(sent[0].text, /from a device it has not used/)
  t.match(sent[0].text, /Mobile Safari on iOS/)
  t.match(sent[0].text, /203\.0\.113\.7/)

  await login(CHROME_WINDOWS, '198.51.100.20')
  sent = await mails()
  t.equal(sent.length, 2, 'a new network')
  t.match(sent[1].text, /from a network it has not used/)
  await login(CHROME_WINDOWS, '198.51.100.21')
  t.equal((await mails()).length, 2, 'known from now on')

  const tokens = await login(CHROME_WINDOWS, '198.51.100.21')
  const off = await app.inject({
    method: 'PUT',
    url: '/v1/users/me/settings',
    headers: bearer(tokens),
    payload: { 'notifications-security__email': false },
  })
  t.equal(off.statusCode, 200)
  await login(SAFARI_IPHONE, '192.0.2.1')
  t.equal((await mails()).length, 2, 'the setting turns the mail off')

  const other = await createUser(app)
  await app.inject({
    method: 'POST',
    url: '/v2/auth/login',
    headers: { 'x-auth-token': client, 'user-agent': SAFARI_IPHONE },
    remoteAddress: '192.0.2.50',
    payload: { email: other.email, password: 'Wrong-Password-1!' },
  })
  t.equal((await mails()).length, 2, "another account's logins do not count")
})
