import { and, eq, sql } from 'drizzle-orm'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { auditLog, oauthClients } from '../../db/schema/index.ts'
import { createUser } from '../helpers/fixtures.ts'
import { REDIRECT, discover, insecure, obtainTokens, startOAuthApp } from '../helpers/oauth.ts'
import { adminWithToken } from '../helpers/user.ts'

t.setTimeout(300_000)

// Rotating an OAuth client's secret with an overlap, as the client apps' and the webhooks' secrets: the
// old secret keeps working at the token and introspection endpoints until the overlap ends.
t.test('OAuth client secret rotation with an overlap', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const admin = await adminWithToken(app)
  const user = await createUser(app)
  const created = await app.inject({
    method: 'POST',
    url: '/v1/admin/oauth-clients',
    headers: admin.headers,
    payload: { name: 'Coach Platform', redirect_uris: [REDIRECT], scopes: ['offline_access', 'measurements:read'] },
  })
  t.equal(created.statusCode, 201, created.body)
  const clientId: string = created.json().client_id
  const client: oauth.Client = { client_id: clientId }
  const first: string = created.json().client_secret

  const rotate = (payload?: object) =>
    app.inject({
      method: 'POST',
      url: `/v1/admin/oauth-clients/${clientId}/rotate-secret`,
      headers: admin.headers,
      ...(payload ? { payload } : {}),
    })
  const { tokens } = await obtainTokens(
    { url, as },
    { client, clientAuth: oauth.ClientSecretBasic(first) },
    user,
    'offline_access measurements:read',
  )
  /** The HTTP status of an RFC 7662 introspection of the access token, authenticated with `secret`. */
  const introspect = async (secret: string) =>
    (await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(secret), tokens.access_token, insecure))
      .status
  let refresh = tokens.refresh_token as string
  /** A refresh (token endpoint) authenticated with `secret`: its status; the rotated refresh token is kept. */
  const refreshWith = async (secret: string) => {
    const res = await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(secret), refresh, insecure)
    if (res.status === 200) refresh = ((await res.clone().json()) as { refresh_token: string }).refresh_token
    return res.status
  }
  t.equal(await introspect(first), 200)

  t.test('the default overlap: both secrets work, then only the new one', async (t) => {
    const rotated = await rotate()
    t.equal(rotated.statusCode, 200, rotated.body)
    const second: string = rotated.json().client_secret
    t.not(second, first)
    const until = Date.parse(rotated.json().previous_secret_expires)
    t.ok(
      Math.abs(until - (Date.now() + 86_400_000)) < 60_000,
      'the old secret works for a day (CLIENT_SECRET_OVERLAP_S)',
    )
    t.equal(await introspect(first), 200, 'the old secret inside the overlap')
    t.equal(await introspect(second), 200, 'the new secret')
    t.equal(await refreshWith(first), 200, 'a refresh with the old secret')
    t.equal(await refreshWith(second), 200, 'a refresh with the new secret')
    // The overlap ends (moved into the past rather than waited for).
    await app.db
      .update(oauthClients)
      .set({ previousSecretExpiresAt: sql`now() - interval '1 second'` as never })
      .where(eq(oauthClients.id, clientId))
    t.equal(await introspect(first), 401, 'the old secret after the overlap')
    t.equal(await refreshWith(first), 401)
    t.equal(await introspect(second), 200)
    const listed = await app.inject({ method: 'GET', url: '/v1/admin/oauth-clients', headers: admin.headers })
    const row = listed.json().data.find((c: { client_id: string }) => c.client_id === clientId)
    t.equal(row.previous_secret_expires, null, 'no overlap left')
    t.notOk(listed.body.includes(second), 'never a secret in the list')

    t.test('overlap_s 0 (a leaked secret) stops the old one at once', async (t) => {
      const now = await rotate({ overlap_s: 0 })
      t.equal(now.statusCode, 200)
      t.equal(now.json().previous_secret_expires, null)
      t.equal(await introspect(second), 401)
      t.equal(await introspect(now.json().client_secret), 200)

      t.test('two rotations in a row: only the last two secrets work', async (t) => {
        const a = await rotate({ overlap_s: 3600 })
        const b = await rotate({ overlap_s: 3600 })
        t.equal(await introspect(now.json().client_secret), 401, 'the secret before the last two')
        t.equal(await introspect(a.json().client_secret), 200, 'the one just replaced, inside its overlap')
        t.equal(await introspect(b.json().client_secret), 200)
        // A real, short overlap: over once its second has passed.
        const c = await rotate({ overlap_s: 1 })
        await new Promise((resolve) => setTimeout(resolve, 1_200))
        t.equal(await introspect(b.json().client_secret), 401, 'after a one-second overlap')
        t.equal(await introspect(c.json().client_secret), 200)
      })
    })
  })

  t.test('overlap_s is checked, and every rotation is audited with it', async (t) => {
    for (const overlap of [-1, 2592001, 'soon', 1.5]) {
      const bad = await rotate({ overlap_s: overlap })
      t.equal(bad.statusCode, 400, `overlap_s ${overlap}`)
      t.equal(bad.json().error, 'validation_failed')
    }
    const extra = await rotate({ overlap_s: 5, more: true })
    t.equal(extra.statusCode, 400)
    const entries = await app.db
      .select({ action: auditLog.action, details: auditLog.details })
      .from(auditLog)
      .where(and(eq(auditLog.targetId, clientId), eq(auditLog.action, 'oauth_client.rotate_secret')))
    t.same(
      entries.map((e) => (e.details as { overlap_s?: number } | null)?.overlap_s).sort((x, y) => (x ?? 0) - (y ?? 0)),
      [0, 1, 3600, 3600, 86400],
      'each rotation with its overlap',
    )
  })
})
