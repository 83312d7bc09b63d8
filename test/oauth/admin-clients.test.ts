import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { and, eq } from 'drizzle-orm'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { auditLog, oauthClients } from '../../db/schema/index.ts'
import { hashClientSecret } from '../../routes/oauth/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { FormAgent, REDIRECT, bearer, discover, insecure, obtainTokens, startOAuthApp } from '../helpers/oauth.ts'
import { adminWithToken } from '../helpers/user.ts'

t.setTimeout(600_000)

t.test('admin: OAuth clients (create, list, update, rotate secret, revoke), audited', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const h = admin.headers
  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object, headers = h) =>
    app.inject({ method, url, headers, ...(payload ? { payload } : {}) })

  const created = await call('POST', '/v1/admin/oauth-clients', {
    name: ' Coach Platform ',
    redirect_uris: ['https://coach.example/callback'],
    scopes: ['measurements:read', 'offline_access'],
  })
  t.equal(created.statusCode, 201, created.body)
  const issued = created.json()
  t.match(issued, {
    client_id: /^nwc_[A-Za-z0-9_-]{22}$/,
    client_secret: /^[A-Za-z0-9_-]{43}$/,
    name: 'Coach Platform',
    public: false,
    redirect_uris: ['https://coach.example/callback'],
    scopes: ['measurements:read', 'offline_access'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    revoked: null,
  })
  const [row] = await app.db.select().from(oauthClients).where(eq(oauthClients.id, issued.client_id))
  t.equal(row.secretHash, hashClientSecret(issued.client_secret), 'only the hash is kept')

  const pub = await call('POST', '/v1/admin/oauth-clients', {
    name: 'Watch',
    redirect_uris: ['com.nowatch.coach:/cb', 'http://127.0.0.1/cb'],
    scopes: ['measurements:write'],
    public: true,
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
  })
  t.equal(pub.statusCode, 201, pub.body)
  t.match(pub.json(), { public: true, client_secret: null })

  t.test('redirect URIs and scopes are checked', async (t) => {
    for (const [uri, problem] of [
      ['http://coach.example/cb', /loopback/],
      ['https://coach.example/cb#frag', /fragment/],
      ['myapp:/cb', /reverse-domain/],
      ['not a uri', /absolute/],
    ] as const) {
      const res = await call('POST', '/v1/admin/oauth-clients', { name: 'x', redirect_uris: [uri], scopes: ['openid'] })
      t.equal(res.statusCode, 400, uri)
      t.equal(res.json().error, 'validation_failed')
      t.match(res.json().details[0], { field: 'body.redirect_uris.0', problem })
    }
    const scope = await call('POST', '/v1/admin/oauth-clients', {
      name: 'x',
      redirect_uris: ['https://a.example/cb'],
      scopes: ['admin'],
    })
    t.equal(scope.statusCode, 400)
    t.equal(scope.json().error, 'validation_failed')
  })

  t.test('list, update, rotate, revoke', async (t) => {
    const list = await call('GET', '/v1/admin/oauth-clients?limit=1')
    t.equal(list.statusCode, 200)
    t.equal(list.json().data.length, 1)
    t.ok(list.json().next_cursor, 'paginated')
    t.notOk(list.body.includes(issued.client_secret), 'never a secret')
    const page2 = await call('GET', `/v1/admin/oauth-clients?cursor=${encodeURIComponent(list.json().next_cursor)}`)
    const ids = [...list.json().data, ...page2.json().data].map((c: { client_id: string }) => c.client_id)
    t.ok(ids.includes(issued.client_id) && ids.includes(pub.json().client_id))

    const updated = await call('PATCH', `/v1/admin/oauth-clients/${issued.client_id}`, {
      scopes: ['measurements:read', 'journal:read'],
      name: 'Coach Platform 2',
    })
    t.equal(updated.statusCode, 200, updated.body)
    t.match(updated.json(), { name: 'Coach Platform 2', scopes: ['measurements:read', 'journal:read'] })
    const bad = await call('PATCH', `/v1/admin/oauth-clients/${issued.client_id}`, { redirect_uris: ['ftp:x'] })
    t.equal(bad.statusCode, 400)

    const rotated = await call('POST', `/v1/admin/oauth-clients/${issued.client_id}/rotate-secret`)
    t.equal(rotated.statusCode, 200, rotated.body)
    t.not(rotated.json().client_secret, issued.client_secret)
    t.ok(rotated.json().secret_rotated)
    const publicRotate = await call('POST', `/v1/admin/oauth-clients/${pub.json().client_id}/rotate-secret`)
    t.equal(publicRotate.statusCode, 409)
    t.equal(publicRotate.json().error, 'public_client')

    const revoked = await call('POST', `/v1/admin/oauth-clients/${issued.client_id}/revoke`)
    t.equal(revoked.statusCode, 200)
    t.ok(revoked.json().revoked)
    const again = await call('PATCH', `/v1/admin/oauth-clients/${issued.client_id}`, { name: 'x' })
    t.equal(again.statusCode, 409)
    t.equal(again.json().error, 'client_revoked')
    const missing = await call('POST', '/v1/admin/oauth-clients/nwc_AAAAAAAAAAAAAAAAAAAAAA/revoke')
    t.equal(missing.statusCode, 404)

    const actions = (
      await app.db
        .select({ action: auditLog.action })
        .from(auditLog)
        .where(and(eq(auditLog.actorId, admin.user.id), eq(auditLog.targetType, 'oauth_client')))
    ).map((r) => r.action)
    for (const a of [
      'oauth_client.create',
      'oauth_client.list',
      'oauth_client.update',
      'oauth_client.rotate_secret',
      'oauth_client.revoke',
    ]) {
      t.ok(actions.includes(a), `${a} audited`)
    }
  })

  t.test('only admins', async (t) => {
    const someone = await userWithToken(app)
    const res = await call('GET', '/v1/admin/oauth-clients', undefined, someone.headers)
    t.equal(res.statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: '/v1/admin/oauth-clients' })).statusCode, 401)
  })
})

t.test('a revoked client loses its tokens at once; a rotated secret replaces the old one', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const admin = await adminWithToken(app)
  const made = await app.inject({
    method: 'POST',
    url: '/v1/admin/oauth-clients',
    headers: admin.headers,
    payload: { name: 'Clinic', redirect_uris: [REDIRECT], scopes: ['offline_access', 'measurements:read'] },
  })
  const { client_id, client_secret } = made.json()
  const c = { client: { client_id }, clientAuth: oauth.ClientSecretBasic(client_secret) }
  const { user } = await userWithToken(app)
  const { tokens } = await obtainTokens({ url, as }, c, user, 'offline_access measurements:read', {
    agent: new FormAgent(url),
  })
  const rotated = await app.inject({
    method: 'POST',
    url: `/v1/admin/oauth-clients/${client_id}/rotate-secret`,
    headers: admin.headers,
    // No overlap (a leaked secret); the overlap is tested in secret-rotation.test.ts.
    payload: { overlap_s: 0 },
  })
  const refreshWith = (secret: string) =>
    oauth.refreshTokenGrantRequest(
      as,
      c.client,
      oauth.ClientSecretBasic(secret),
      tokens.refresh_token as string,
      insecure,
    )
  t.equal((await refreshWith(client_secret)).status, 401, 'with overlap_s 0 the old secret stops at once')
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    c.client,
    await refreshWith(rotated.json().client_secret),
  )
  t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(refreshed.access_token) })).status, 200)
  await app.inject({ method: 'POST', url: `/v1/admin/oauth-clients/${client_id}/revoke`, headers: admin.headers })
  t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(refreshed.access_token) })).status, 401)
})

t.test('npm run cli -- oauth-client create / list / revoke', async (t) => {
  const run = promisify(execFile)
  const dir = mkdtempSync(join(tmpdir(), 'cli-oauth-'))
  const env = { ...process.env, DATA_DIR: dir, DATABASE_URL: '', LOG_LEVEL: 'silent', NODE_ENV: 'development' }
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli.ts', ...args], { env })
    return JSON.parse(stdout)
  }
  const confidential = await cli(
    'oauth-client',
    'create',
    '--name',
    'Research study',
    '--redirect-uri',
    'https://study.example/cb',
    '--redirect-uri',
    'http://127.0.0.1:8080/cb',
    '--scope',
    'measurements:read journal:read offline_access',
  )
  t.match(confidential, {
    client_id: /^nwc_/,
    client_secret: /^[A-Za-z0-9_-]{43}$/,
    name: 'Research study',
    public: false,
    redirect_uris: ['https://study.example/cb', 'http://127.0.0.1:8080/cb'],
    scopes: ['measurements:read', 'journal:read', 'offline_access'],
  })
  const pub = await cli(
    'oauth-client',
    'create',
    '--name',
    'TV app',
    '--redirect-uri',
    'com.example.tv:/cb',
    '--scope',
    'measurements:read',
    '--public',
  )
  t.match(pub, { public: true, client_secret: null })
  await t.rejects(
    run(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli.ts',
        'oauth-client',
        'create',
        '--name',
        'x',
        '--redirect-uri',
        'https://a.example/cb',
        '--scope',
        'root',
      ],
      { env },
    ),
    /unknown scope/,
  )
  const list = await cli('oauth-client', 'list')
  t.notOk(JSON.stringify(list).includes(confidential.client_secret), 'the list never shows a secret')
  t.ok(list.some((c: { client_id: string }) => c.client_id === pub.client_id))
  const revoked = await cli('oauth-client', 'revoke', '--id', pub.client_id)
  t.ok(revoked.revoked)
  const rotated = await cli('oauth-client', 'rotate', '--id', confidential.client_id, '--overlap-s', '600')
  t.match(rotated, { client_id: confidential.client_id, client_secret: /^[A-Za-z0-9_-]{43}$/ })
  t.not(rotated.client_secret, confidential.client_secret)
  t.ok(Date.parse(rotated.previous_secret_expires) > Date.now(), 'the old secret overlaps')
  await t.rejects(
    run(process.execPath, ['--import', 'tsx', 'cli.ts', 'oauth-client', 'rotate', '--id', pub.client_id], { env }),
    /revoked/,
  )
  const database = await openDatabase({ dataDir: dir })
  try {
    const [row] = await database.db.select().from(oauthClients).where(eq(oauthClients.id, confidential.client_id))
    t.equal(row.secretHash, hashClientSecret(rotated.client_secret))
    t.equal(row.previousSecretHash, hashClientSecret(confidential.client_secret), 'the replaced one, until its end')
  } finally {
    await database.close()
  }
})
