import t from 'tap'
import { isPublicAddress, locate } from '../../routes/auth/geoip.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createClient, createUser } from '../helpers/fixtures.ts'

t.test('which addresses are looked up', async (t) => {
  for (const ip of [
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.1',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.1.1',
    '::1',
    'fd00::1',
    'fe80::1',
    '::ffff:10.0.0.1',
    'nonsense',
  ]) {
    t.notOk(isPublicAddress(ip), ip)
    t.equal(await locate(ip), null, `${ip}: no place`)
  }
  for (const ip of ['8.8.8.8', '81.2.69.160', '2001:4860:4860::8888', '::ffff:8.8.8.8']) t.ok(isPublicAddress(ip), ip)
  t.match(await locate('8.8.8.8'), { countryCode: 'US', city: String, latitude: Number, longitude: Number })
  t.match(await locate('::ffff:8.8.8.8'), { countryCode: 'US' }, 'an IPv4-mapped address is IPv4')
  t.match(await locate('2001:4860:4860::8888'), { countryCode: String }, 'IPv6 too')
})

t.test('the history carries the place, and refreshes as type refresh', async (t) => {
  const app = await buildTestApp(t, { env: { TRUST_PROXY: 'loopback' } })
  const client = await createClient(app)
  const user = await createUser(app)
  const login = (headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
    app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      remoteAddress,
      headers: { 'x-auth-token': client.x_auth_token, ...headers },
      payload: { email: user.email, password: user.password },
    })

  const fromLondon = await login({ 'x-forwarded-for': '81.2.69.160', 'user-agent': 'NOWATCH/2.1 (iPhone; iOS 17.2)' })
  t.equal(fromLondon.statusCode, 200)
  const direct = await login({}, '8.8.8.8')
  t.equal(direct.statusCode, 200)
  const local = await login({})
  const refreshed = await app.inject({
    method: 'POST',
    url: '/v1/auth/refresh',
    remoteAddress: '127.0.0.1',
    headers: { 'x-auth-token': client.x_auth_token, 'x-forwarded-for': '2001:4860:4860::8888' },
    payload: { refresh: fromLondon.json().refresh },
  })
  t.equal(refreshed.statusCode, 200)

  const history = await app.inject({ method: 'GET', url: '/v1/users/me/auth-history', headers: bearer(local.json()) })
  t.equal(history.statusCode, 200)
  const [refresh, loopback, google, london] = history.json().data
  t.match(refresh, {
    type: 'refresh',
    success: true,
    reason: null,
    ip: '2001:4860:4860::8888',
    country: { iso: String, name_en: String },
  })
  t.match(loopback, { type: 'login', ip: '127.0.0.1', country: null, city: null, map_links: null })
  t.match(google, { type: 'login', ip: '8.8.8.8', country: { iso: 'US', name_en: 'United States' } })
  t.match(london, {
    type: 'login',
    success: true,
    ip: '81.2.69.160',
    country: { iso: 'GB', name_en: 'United Kingdom' },
    city: { name_en: String, lat: Number, lon: Number },
    operating_system: { family: 'iOS' },
  })
  t.equal(
    london.map_links.google,
    `https://www.google.com/maps/search/${london.city.lat},${london.city.lon}`,
    'a map link to the coordinates',
  )

  const other = await createUser(app)
  const theirs = await app.inject({
    method: 'GET',
    url: '/v1/users/me/auth-history',
    headers: bearer(
      (
        await app.inject({
          method: 'POST',
          url: '/v2/auth/login',
          headers: { 'x-auth-token': client.x_auth_token },
          payload: { email: other.email, password: other.password },
        })
      ).json(),
    ),
  })
  t.equal(theirs.json().data.length, 1, 'another account sees only its own entries')
})
