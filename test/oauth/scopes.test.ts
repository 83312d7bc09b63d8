import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { DATA_SCOPES } from '../../plugins/oauth-scopes.ts'
import { clearOfBoundary, windowOf } from '../helpers/clock.ts'
import { createUser } from '../helpers/fixtures.ts'
import { FormAgent, bearer, discover, obtainTokens, registerClient, startOAuthApp } from '../helpers/oauth.ts'

t.setTimeout(600_000)

interface Operation {
  tags?: string[]
  security?: Array<Record<string, string[]>>
}
const spec = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, Operation>>
}
const operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
)
/** The route's OAuth scopes: a token needs any one of them (one security requirement each). */
const oauthScopesOf = (op: Operation) => (op.security ?? []).flatMap((s) => s.oauth2 ?? [])
const oauthScopeOf = (op: Operation) => oauthScopesOf(op)[0]
const UUID = '00000000-0000-4000-8000-000000000000'
/** A concrete URL for a path template: any id will do, the scope check comes before the handler. */
const concrete = (path: string) =>
  path.replace(/\{([a-z_]+)\}/g, (_m, name: string) => (name === 'date' ? '2024-01-01' : UUID))

t.test(
  'the spec declares an OAuth scope on every own-data measurement and statistics route, and none on the rest',
  async (t) => {
    const measurementAndStatistics = operations.filter(
      ({ path, op }) =>
        path.startsWith('/v1/') &&
        !path.startsWith('/v1/shared/') &&
        op.tags?.some((tag) => tag === 'measurement' || tag === 'statistics'),
    )
    t.ok(measurementAndStatistics.length >= 7, `${measurementAndStatistics.length} measurement and statistics routes`)
    for (const { method, path, op } of measurementAndStatistics) {
      t.ok(oauthScopeOf(op), `${method} ${path} names its OAuth scope`)
    }
    for (const { method, path, op } of operations) {
      const closed =
        path.includes('/admin/') ||
        path.startsWith('/v1/auth') ||
        path.startsWith('/v2/auth') ||
        path.startsWith('/v1/shared') ||
        path.startsWith('/v1/sharing') ||
        path.includes('/authorizations') ||
        path.includes('/mfa') ||
        path.includes('/passkeys') ||
        path.includes('/sessions') ||
        path.startsWith('/oauth')
      if (closed) t.notOk(oauthScopeOf(op), `${method} ${path} is closed to third-party tokens`)
    }
  },
)

t.test('third-party tokens on the routes, generated from the spec', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const ctx = { url, as: await discover(issuer) }
  const user = await createUser(app)
  const client = await registerClient(app)
  // One browser: signed in once, one consent per new scope.
  const agent = new FormAgent(url)
  const tokenWith = async (scopes: string[]) =>
    (await obtainTokens(ctx, client, user, scopes.join(' '), { agent })).tokens.access_token
  const call = (method: string, path: string, token: string) =>
    app.inject({
      method: method as 'GET',
      url: concrete(path),
      headers: { ...bearer(token), 'content-type': 'application/json' },
      ...(method === 'GET' || method === 'DELETE' ? {} : { payload: '{}' }),
    })

  const scoped = operations.filter(({ op }) => oauthScopeOf(op))
  // Routes grouped by the scopes that open them (any one of them).
  const bySet = new Map<string, typeof scoped>()
  for (const o of scoped) {
    const key = oauthScopesOf(o.op).join(' ')
    bySet.set(key, [...(bySet.get(key) ?? []), o])
  }
  t.ok(
    [...bySet.keys()].some((k) => k.includes(' ')),
    'a route that any of several scopes opens (GET /v1/sync)',
  )
  for (const [key, needing] of bySet) {
    const set = key.split(' ')
    // Every other data scope, but none of these.
    const without = await tokenWith(DATA_SCOPES.filter((s) => !set.includes(s)))
    const description =
      set.length === 1
        ? `This route needs the ${key} scope, which this app was not granted.`
        : `This route needs one of the ${set.join(', ')} scopes; this app was granted none of them.`
    for (const { method, path } of needing) {
      const res = await call(method, path, without)
      t.equal(res.statusCode, 403, `${method} ${path} without ${key}`)
      t.equal(res.json().error, 'insufficient_scope')
      t.equal(
        res.headers['www-authenticate'],
        `Bearer realm="nowatch", error="insufficient_scope", error_description="${description}", scope="${key}"`,
        'RFC 6750 challenge naming the scope',
      )
    }
    for (const scope of set) {
      const withIt = await tokenWith([scope])
      for (const { method, path } of needing) {
        const ok = await call(method, path, withIt)
        t.not(ok.statusCode, 403, `${method} ${path} with ${scope} passes the scope check (${ok.statusCode})`)
        t.not(ok.statusCode, 401)
      }
    }
  }

  const all = await tokenWith(DATA_SCOPES)
  const closed = operations.filter(({ op }) => op.security?.some((s) => 'bearerAuth' in s) && !oauthScopeOf(op))
  t.ok(closed.length > 40, `${closed.length} bearer routes without an OAuth scope`)
  for (const { method, path } of closed) {
    const res = await call(method, path, all)
    t.equal(res.statusCode, 403, `${method} ${path}: a token with every scope is refused`)
    t.equal(res.json().error, 'insufficient_scope')
  }

  t.test('the data answered is the token owner’s, through the same handlers', async (t) => {
    const first = await app.inject({
      method: 'POST',
      url: '/v1/measurements',
      headers: bearer(await tokenWith(['measurements:write'])),
      payload: {
        device_id: 'watch-1',
        samples: [{ type: 'heart_rate', timestamp: '2024-05-01T10:00:00Z', value: 61 }],
      },
    })
    t.equal(first.statusCode, 200, first.body)
    const read = await app.inject({
      method: 'GET',
      url: '/v1/measurements?type=heart_rate&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z',
      headers: bearer(await tokenWith(['measurements:read'])),
    })
    t.equal(read.statusCode, 200)
    t.match(read.json().data, [{ type: 'heart_rate', value: 61 }])
    const me = await app.inject({
      method: 'GET',
      url: '/v1/users/me',
      headers: bearer(await tokenWith(['profile:read'])),
    })
    t.equal(me.json().id, user.id)
  })
})

t.test(
  'per-client rate limit on the data routes: RateLimit-Policy / RateLimit headers, 429 with Retry-After',
  async (t) => {
    const { app, url, issuer } = await startOAuthApp(t, {
      RATE_LIMIT_ENABLED: 'true',
      OAUTH_CLIENT_RATE_LIMIT: '3',
      OAUTH_CLIENT_RATE_WINDOW_S: '3600',
    })
    const ctx = { url, as: await discover(issuer) }
    const client = await registerClient(app)
    const other = await registerClient(app)
    const alice = await createUser(app)
    const bob = await createUser(app)
    const a1 = (await obtainTokens(ctx, client, alice, 'measurements:read')).tokens.access_token
    const b1 = (await obtainTokens(ctx, client, bob, 'measurements:read')).tokens.access_token
    const o1 = (await obtainTokens(ctx, other, alice, 'measurements:read')).tokens.access_token
    const get = (token: string) => fetch(`${url}/v1/measurements/types`, { headers: bearer(token) })
    // The budget is counted in a fixed hour (OAUTH_CLIENT_RATE_WINDOW_S): the four requests of `client` below,
    // a fraction of a second, must not straddle the start of a new one, which would count them from 0 again.
    await clearOfBoundary(windowOf(3600_000), 10_000)
    const first = await get(a1)
    t.equal(first.status, 200)
    t.equal(first.headers.get('ratelimit-policy'), '"client";q=3;w=3600')
    t.match(first.headers.get('ratelimit'), /^"client";r=2;t=\d+$/)
    t.match((await get(b1)).headers.get('ratelimit'), /r=1;/, 'the budget is the client’s, all its users together')
    t.equal((await get(a1)).status, 200)
    const over = await get(b1)
    t.equal(over.status, 429)
    t.equal(((await over.json()) as { error: string }).error, 'rate_limited')
    t.ok(Number(over.headers.get('retry-after')) > 0, 'Retry-After')
    t.match(over.headers.get('ratelimit'), /r=0;/)
    t.equal((await get(o1)).status, 200, 'another client has its own budget')
  },
)
