import { sql } from 'drizzle-orm'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { createUser, login } from '../helpers/fixtures.ts'
import { enrolTotp } from '../helpers/mfa.ts'
import {
  FormAgent,
  REDIRECT,
  authorizationRequest,
  bearer,
  discover,
  insecure,
  registerClient,
  signInAndConsent,
  startOAuthApp,
} from '../helpers/oauth.ts'

t.setTimeout(300_000)

// What RFC 9700 asks an authorization server to refuse, each driven with oauth4webapi.
t.test('the authorization server refuses what it must', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const user = await createUser(app)
  const a = await registerClient(app, { name: 'App A' })
  const b = await registerClient(app, { name: 'App B' })

  /** A code for client A (signed in and consented), with its verifier and state. */
  async function codeFor(c = a, scope = 'offline_access measurements:read') {
    const req = await authorizationRequest(as, c.client, scope)
    const flow = await signInAndConsent(new FormAgent(url), req.url, user)
    return { ...req, params: oauth.validateAuthResponse(as, c.client, flow.callback, req.state) }
  }
  const exchange = (c: typeof a, params: URLSearchParams, verifier: string, redirect = REDIRECT): Promise<Response> =>
    oauth.authorizationCodeGrantRequest(as, c.client, c.clientAuth, params, redirect, verifier, {
      ...insecure,
      [oauth.nopkce]: false,
    } as never)
  const errorOf = async (res: Response) => ({ status: res.status, ...((await res.json()) as { error: string }) })

  t.test('an unregistered redirect URI is never redirected to', async (t) => {
    const req = await authorizationRequest(as, a.client, 'measurements:read', 'https://evil.example/cb')
    const res = await fetch(req.url, { redirect: 'manual' })
    t.equal(res.status, 400, 'an error page, no redirect')
    t.notOk(res.headers.get('location'))
    t.match(await res.text(), /redirect_uri/)
    // A prefix or a path under the registered one is not it either (exact matching).
    const longer = await authorizationRequest(as, a.client, 'measurements:read', `${REDIRECT}/more`)
    t.equal((await fetch(longer.url, { redirect: 'manual' })).status, 400)
  })

  t.test('PKCE is required, S256 only', async (t) => {
    const req = await authorizationRequest(as, a.client, 'measurements:read')
    const without = new URL(req.url)
    without.searchParams.delete('code_challenge')
    without.searchParams.delete('code_challenge_method')
    const res = await fetch(without, { redirect: 'manual' })
    const back = new URL(res.headers.get('location') ?? '', url)
    t.equal(back.searchParams.get('error'), 'invalid_request', 'no code_challenge: refused')
    t.match(back.searchParams.get('error_description'), /PKCE/)
    const plain = new URL(req.url)
    plain.searchParams.set('code_challenge', 'a'.repeat(43))
    plain.searchParams.set('code_challenge_method', 'plain')
    const res2 = await fetch(plain, { redirect: 'manual' })
    t.equal(
      new URL(res2.headers.get('location') ?? '', url).searchParams.get('error'),
      'invalid_request',
      'plain refused',
    )
  })

  t.test('a wrong or missing code_verifier is invalid_grant', async (t) => {
    const { params } = await codeFor()
    t.same(await errorOf(await exchange(a, params, oauth.generateRandomCodeVerifier())), {
      status: 400,
      error: 'invalid_grant',
      error_description: 'grant request is invalid',
    })
    const second = await codeFor()
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code: second.params.get('code') ?? '',
      redirect_uri: REDIRECT,
    })
    const res = await fetch(as.token_endpoint as string, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${a.client.client_id}:${a.secret}`).toString('base64')}`,
      },
      body,
    })
    t.equal((await errorOf(res)).error, 'invalid_grant', 'no verifier at all')
  })

  t.test('a replayed code is refused, and the tokens of its first use are revoked', async (t) => {
    const { params, verifier } = await codeFor()
    const first = await oauth.processAuthorizationCodeResponse(as, a.client, await exchange(a, params, verifier))
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(first.access_token) })).status, 200)
    t.equal((await errorOf(await exchange(a, params, verifier))).error, 'invalid_grant', 'the second use')
    t.equal(
      (await fetch(`${url}/v1/measurements/types`, { headers: bearer(first.access_token) })).status,
      401,
      'the access token of the first use is revoked',
    )
    const refresh = await oauth.refreshTokenGrantRequest(
      as,
      a.client,
      a.clientAuth,
      first.refresh_token as string,
      insecure,
    )
    t.equal((await errorOf(refresh)).error, 'invalid_grant', 'and its refresh token')
  })

  t.test('an expired code is refused', async (t) => {
    const { params, verifier } = await codeFor()
    // Codes live 60 s: move this one past its end instead of waiting.
    await queryRows(
      app.db,
      sql`update oauth_models set expires_at = now() - interval '1 second',
            payload = jsonb_set(payload, '{exp}', to_jsonb(extract(epoch from now())::int - 1))
          where kind = 'AuthorizationCode' and id = ${params.get('code')} returning id`,
    )
    t.equal((await errorOf(await exchange(a, params, verifier))).error, 'invalid_grant')
  })

  t.test("another client cannot use a client's code", async (t) => {
    const { params, verifier } = await codeFor(a)
    t.equal((await errorOf(await exchange(b, params, verifier))).error, 'invalid_grant', 'client B with A’s code')
    // And the code still works for A? No: a code presented by the wrong client is spent (RFC 9700 §4.5).
    const res = await exchange(a, params, verifier)
    t.ok(res.status === 200 || res.status === 400, 'A’s own use is answered, never a 500')
  })

  t.test('a code is bound to its redirect URI', async (t) => {
    const c = await registerClient(app, { redirectUris: [REDIRECT, 'http://127.0.0.1:9/other'] })
    const { params, verifier } = await codeFor(c)
    t.equal((await errorOf(await exchange(c, params, verifier, 'http://127.0.0.1:9/other'))).error, 'invalid_grant')
  })

  t.test('the sign-in page: same rules as the API login, CSRF-safe forms, strict CSP', async (t) => {
    const agent = new FormAgent(url)
    const req = await authorizationRequest(as, a.client, 'measurements:read')
    const step = await agent.follow(req.url.href)
    const csp = (await agent.fetch(step.page?.url ?? '')).headers.get('content-security-policy') ?? ''
    t.match(csp, /default-src 'none'/)
    t.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:9/, 'forms may post here and redirect to the app only')
    t.match(csp, /script-src 'self'/, 'script from this server only (the passkey step)')
    t.notMatch(csp, /unsafe-inline|unsafe-eval/)
    t.match(step.page?.html, /<meta name="viewport" content="width=device-width,initial-scale=1">/, 'phone-sized')
    t.notMatch(
      step.page?.html,
      /<script(?! src="\/oauth\/assets\/)|https?:\/\/(?!127)/,
      'no inline script, no external asset',
    )
    // A wrong password: the generic failure, counted in the account's history like an API login.
    const wrong = await agent.submit(step.page?.html ?? '', { email: user.email, password: 'Wrong-password-1!' })
    t.equal(wrong.page?.status, 401)
    t.match(wrong.page?.html, /Email or password is incorrect/)
    const [attempt] = await queryRows<{ reason: string; success: boolean }>(
      app.db,
      sql`select reason, success from login_attempts where user_id = ${user.id} order by created_at desc limit 1`,
    )
    t.same(attempt, { reason: 'invalid_credentials', success: false })
    // The form without its token, or with another interaction's: refused, nothing checked.
    const uid = new URL(step.page?.url ?? '').pathname.split('/').pop()
    const forged = await agent.fetch(`/oauth/interaction/${uid}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: 'x'.repeat(43), email: user.email, password: user.password }).toString(),
    })
    t.equal(forged.status, 400, 'a forged form is refused')
    const crossSite = await agent.fetch(`/oauth/interaction/${uid}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: new URLSearchParams({
        csrf: (step.page?.html ?? '').match(/name="csrf" value="([^"]+)"/)?.[1] ?? '',
        email: user.email,
        password: user.password,
      }).toString(),
    })
    t.equal(crossSite.status, 400, 'a post from another origin is refused')
    // Without the browser's interaction cookie the page does not work at all.
    const stranger = await fetch(step.page?.url ?? '', { redirect: 'manual' })
    t.equal(stranger.status, 400)
  })

  t.test('the account lockout of the API login applies on the sign-in page', async (t) => {
    const victim = await createUser(app)
    const agent = new FormAgent(url)
    const req = await authorizationRequest(as, a.client, 'measurements:read')
    let step = await agent.follow(req.url.href)
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) {
      step = await agent.submit(step.page?.html ?? '', { email: victim.email, password: `Wrong-${i}-password!` })
      statuses.push(step.page?.status ?? 0)
    }
    t.ok(statuses.includes(429), `backoff after repeated failures (${statuses.join(',')})`)
    // The right password while in backoff is not even checked.
    step = await agent.submit(step.page?.html ?? '', { email: victim.email, password: victim.password })
    t.equal(step.page?.status, 429)
    t.match(step.page?.html, /wait before trying again/)
  })

  t.test('an unverified account past its deadline and a disabled one cannot sign in', async (t) => {
    const locked = await createUser(app, { verified: false, createdAt: new Date(Date.now() - 30 * 86400_000) })
    const agent = new FormAgent(url)
    const req = await authorizationRequest(as, a.client, 'measurements:read')
    const step = await agent.follow(req.url.href)
    const res = await agent.submit(step.page?.html ?? '', { email: locked.email, password: locked.password })
    t.equal(res.page?.status, 403)
    t.match(res.page?.html, /Verify your e-mail address/)
  })
})

t.test('an account with a second factor finishes the sign-in with its code', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const user = await createUser(app)
  const headers = bearer((await login(app, user)).access)
  const { recoveryCodes } = await enrolTotp(app, headers, Date.now())
  const c = await registerClient(app)
  const agent = new FormAgent(url)
  const req = await authorizationRequest(as, c.client, 'measurements:read')
  let step = await agent.follow(req.url.href)
  step = await agent.submit(step.page?.html ?? '', { email: user.email, password: user.password })
  t.match(step.page?.html, /Your second factor/, 'the password alone is not enough')
  const wrong = await agent.submit(step.page?.html ?? '', { code: '000000' })
  t.equal(wrong.page?.status, 401)
  t.match(wrong.page?.html, /not right/)
  step = await agent.submit(wrong.page?.html ?? '', { code: recoveryCodes[0] })
  t.match(step.page?.html, /class="scopes"/, 'then the consent page')
  const done = await agent.submit(step.page?.html ?? '', { scope: 'measurements:read' })
  const params = oauth.validateAuthResponse(as, c.client, done.left as URL, req.state)
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    c.client,
    await oauth.authorizationCodeGrantRequest(as, c.client, c.clientAuth, params, REDIRECT, req.verifier, insecure),
  )
  t.equal(tokens.scope, 'measurements:read')
})
