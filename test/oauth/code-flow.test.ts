import * as oauth from 'oauth4webapi'
import t from 'tap'
import { createUser } from '../helpers/fixtures.ts'
import {
  FormAgent,
  REDIRECT,
  authorizationRequest,
  discover,
  insecure,
  registerClient,
  signInAndConsent,
  startOAuthApp,
} from '../helpers/oauth.ts'

t.setTimeout(300_000)

t.test('authorization code + PKCE with oauth4webapi against the listening server', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
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
  t.equal(rfc8414.issuer, url, 'RFC 8414 metadata')
  t.same(rfc8414.response_types_supported, ['code'], 'no implicit flow')

  const user = await createUser(app)
  const { client, clientAuth } = await registerClient(app)
  const req = await authorizationRequest(as, client, 'openid offline_access measurements:read journal:read')
  const agent = new FormAgent(url)
  const { callback, sawConsent, sawSignIn } = await signInAndConsent(agent, req.url, user)
  t.ok(sawSignIn && sawConsent, 'sign-in and consent pages shown')
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT)
  const params = oauth.validateAuthResponse(as, client, callback, req.state)
  const res = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    clientAuth,
    params,
    REDIRECT,
    req.verifier,
    insecure,
  )
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, res)
  t.ok(tokens.access_token)
  t.ok(tokens.refresh_token, 'offline_access gives a refresh token with the code exchange')
  t.ok(tokens.id_token, 'OpenID Connect id_token')
  t.same(new Set(tokens.scope?.split(' ')), new Set(['openid', 'offline_access', 'measurements:read', 'journal:read']))

  const data = await fetch(`${url}/v1/measurements?type=heart_rate`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  })
  t.equal(data.status, 200, await data.text())
})
