import * as oauth from 'oauth4webapi'
import t from 'tap'
import { createUser } from '../helpers/fixtures.ts'
import {
  FormAgent,
  REDIRECT,
  authorizationRequest,
  bearer,
  discover,
  insecure,
  obtainTokens,
  registerClient,
  signInAndConsent,
  startOAuthApp,
} from '../helpers/oauth.ts'

t.setTimeout(300_000)

// One listening server for the file: every check drives the real OAuth client library (oauth4webapi,
// by panva) against it, through discovery, the pages and the token endpoint.
t.test('OAuth 2.0 authorization code + PKCE, refresh, revocation, introspection', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const ctx = { url, as }

  t.test('discovery: RFC 8414 and OpenID Connect metadata, every endpoint under PUBLIC_URL', async (t) => {
    t.equal(as.issuer, url, 'the issuer is PUBLIC_URL')
    for (const key of [
      'authorization_endpoint',
      'token_endpoint',
      'revocation_endpoint',
      'introspection_endpoint',
      'device_authorization_endpoint',
      'userinfo_endpoint',
      'jwks_uri',
    ] as const) {
      t.ok(String(as[key]).startsWith(`${url}/oauth/`), `${key} is under the issuer`)
    }
    t.same(as.code_challenge_methods_supported, ['S256'], 'PKCE S256 only')
    const rfc8414 = (await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >
    t.equal(rfc8414.issuer, url)
    t.same(rfc8414.response_types_supported, ['code'], 'no implicit flow')
    t.same(
      new Set(rfc8414.grant_types_supported as string[]),
      new Set(['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']),
    )
    for (const s of ['profile:read', 'measurements:read', 'measurements:write', 'journal:read', 'offline_access']) {
      t.ok((rfc8414.scopes_supported as string[]).includes(s), `scope ${s} announced`)
    }
  })

  const user = await createUser(app)
  const confidential = await registerClient(app)

  t.test('the whole flow: sign-in, consent, code + verifier, tokens that read the data routes', async (t) => {
    const { tokens, flow } = await obtainTokens(
      ctx,
      confidential,
      user,
      'openid offline_access measurements:read journal:read',
    )
    t.ok(flow.sawSignIn && flow.sawConsent, 'sign-in and consent pages shown')
    t.equal(`${flow.callback.origin}${flow.callback.pathname}`, REDIRECT, 'back to the exact redirect URI')
    t.equal(flow.callback.searchParams.get('iss'), url, 'RFC 9207 iss in the answer')
    t.ok(tokens.refresh_token, 'offline_access alone gives a refresh token with the code exchange')
    t.ok(tokens.id_token, 'an OpenID Connect id_token')
    t.same(
      new Set(tokens.scope?.split(' ')),
      new Set(['openid', 'offline_access', 'measurements:read', 'journal:read']),
    )
    t.equal(tokens.token_type.toLowerCase(), 'bearer')
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(claims?.sub, user.id, 'the id_token names the account')
    const data = await fetch(`${url}/v1/measurements?type=heart_rate`, { headers: bearer(tokens.access_token) })
    t.equal(data.status, 200)
    t.same(await data.json(), { data: [], next_cursor: null })
    const info = await oauth.userInfoRequest(as, confidential.client, tokens.access_token, insecure)
    const profile = await oauth.processUserInfoResponse(as, confidential.client, user.id, info)
    t.equal(profile.sub, user.id, 'userinfo')
    t.notOk('email' in profile, 'no profile claims without profile:read')
  })

  t.test('a public client (no secret) with PKCE', async (t) => {
    const pub = await registerClient(app, { public: true, scopes: ['measurements:read'] })
    const { tokens } = await obtainTokens(ctx, pub, user, 'measurements:read')
    t.equal(tokens.scope, 'measurements:read')
    t.notOk(tokens.refresh_token, 'no refresh token without offline_access')
  })

  t.test('the user may grant a subset; the grant is remembered; new scopes ask again for those only', async (t) => {
    const c = await registerClient(app)
    const agent = new FormAgent(url)
    const first = await obtainTokens(ctx, c, user, 'measurements:read journal:read statistics:read', {
      untick: ['journal:read'],
      agent,
    })
    t.same(new Set(first.tokens.scope?.split(' ')), new Set(['measurements:read', 'statistics:read']))
    const journal = await fetch(`${url}/v1/checkins`, { headers: bearer(first.tokens.access_token) })
    t.equal(journal.status, 403, 'the unticked scope is not granted')
    t.match(journal.headers.get('www-authenticate'), /error="insufficient_scope".*scope="journal:read"/)
    // The same request again, from another browser: signed in again, but no consent page.
    const again = await obtainTokens(ctx, c, user, 'measurements:read journal:read statistics:read')
    t.ok(again.flow.sawSignIn, 'a new browser signs in')
    t.notOk(again.flow.sawConsent, 'the remembered grant (and the refused scope) skip the consent page')
    t.same(new Set(again.tokens.scope?.split(' ')), new Set(['measurements:read', 'statistics:read']))
    // A new scope: the consent page lists only it.
    const req = await authorizationRequest(as, c.client, 'measurements:read sleep:read')
    const step = await agent.follow(req.url.href)
    const offered = [...(step.page?.html ?? '').matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1])
    t.same(offered, ['sleep:read'], 'only the new scope is asked')
    t.match(step.page?.html, /Already allowed: Read your health measurements/)
  })

  t.test('deny answers access_denied to the redirect URI', async (t) => {
    const c = await registerClient(app)
    const agent = new FormAgent(url)
    const req = await authorizationRequest(as, c.client, 'measurements:read')
    let step = await agent.follow(req.url.href)
    step = await agent.submit(step.page?.html ?? '', { email: user.email, password: user.password })
    const deny = await agent.submit(step.page?.html ?? '', {}, 1)
    t.equal(deny.left?.searchParams.get('error'), 'access_denied')
    t.equal(deny.left?.searchParams.get('state'), req.state)
  })

  t.test('refresh rotates the refresh token; a used one presented again revokes the grant', async (t) => {
    const { tokens } = await obtainTokens(ctx, confidential, user, 'offline_access measurements:read')
    const rotate = async (refresh: string) =>
      oauth.processRefreshTokenResponse(
        as,
        confidential.client,
        await oauth.refreshTokenGrantRequest(as, confidential.client, confidential.clientAuth, refresh, insecure),
      )
    const second = await rotate(tokens.refresh_token as string)
    t.not(second.refresh_token, tokens.refresh_token, 'a new refresh token')
    t.not(second.access_token, tokens.access_token, 'a new access token')
    const third = await rotate(second.refresh_token as string)
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(third.access_token) })).status, 200)
    // The first refresh token again: theft assumed, the grant and every token of it revoked.
    await t.rejects(rotate(tokens.refresh_token as string), { error: 'invalid_grant' } as never)
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(third.access_token) })).status, 401)
    await t.rejects(
      rotate(third.refresh_token as string),
      { error: 'invalid_grant' } as never,
      'the newest refresh token too',
    )
  })

  t.test('RFC 7009 revocation and RFC 7662 introspection', async (t) => {
    const { tokens } = await obtainTokens(ctx, confidential, user, 'offline_access measurements:read')
    const introspect = async (c: typeof confidential, token: string) =>
      oauth.processIntrospectionResponse(
        as,
        c.client,
        await oauth.introspectionRequest(as, c.client, c.clientAuth, token, insecure),
      )
    const live = await introspect(confidential, tokens.access_token)
    t.equal(live.active, true)
    t.equal(live.sub, user.id)
    t.equal(live.client_id, confidential.client.client_id)
    t.match(live.scope, /measurements:read/)
    const other = await registerClient(app)
    t.equal(
      (await introspect(other, tokens.access_token)).active,
      false,
      "another client learns nothing of this client's token",
    )
    const pub = await registerClient(app, { public: true })
    t.equal((await introspect(pub, tokens.access_token)).active, false, 'a public client learns nothing')

    const revoke = async (token: string) =>
      oauth.processRevocationResponse(
        await oauth.revocationRequest(as, confidential.client, confidential.clientAuth, token, insecure),
      )
    await revoke(tokens.access_token)
    const res = await fetch(`${url}/v1/measurements/types`, { headers: bearer(tokens.access_token) })
    t.equal(res.status, 401, 'a revoked access token is refused at once')
    t.match(res.headers.get('www-authenticate'), /Bearer .*error="invalid_token"/)
    t.equal((await introspect(confidential, tokens.access_token)).active, false)
    // Revoking the refresh token ends the grant: its refresh no longer works.
    await revoke(tokens.refresh_token as string)
    await t.rejects(
      oauth.processRefreshTokenResponse(
        as,
        confidential.client,
        await oauth.refreshTokenGrantRequest(
          as,
          confidential.client,
          confidential.clientAuth,
          tokens.refresh_token as string,
          insecure,
        ),
      ),
      { error: 'invalid_grant' } as never,
    )
    await t.resolves(revoke('not-a-token-at-all'), 'an unknown token is no error (RFC 7009 §2.2)')
  })

  t.test('a wrong client secret is refused at the token endpoint', async (t) => {
    const c = await registerClient(app)
    const req = await authorizationRequest(as, c.client, 'measurements:read')
    const flow = await signInAndConsent(new FormAgent(url), req.url, user)
    const params = oauth.validateAuthResponse(as, c.client, flow.callback, req.state)
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      c.client,
      oauth.ClientSecretBasic('not-the-secret'),
      params,
      REDIRECT,
      req.verifier,
      insecure,
    )
    t.equal(res.status, 401)
    t.match(res.headers.get('www-authenticate'), /error="invalid_client"/)
    t.equal(((await res.clone().json()) as { error: string }).error, 'invalid_client')
  })
})
