import { createHash } from 'node:crypto'
import { sql } from 'drizzle-orm'
import * as oauth from 'oauth4webapi'
import t, { type Test } from 'tap'
import { queryRows } from '../../db/client.ts'
import { createUser, login, sharedClient } from '../helpers/fixtures.ts'
import { enrolTotp, totpAt } from '../helpers/mfa.ts'
import {
  type FormAgent as Agent,
  FormAgent,
  REDIRECT,
  authorizationRequest,
  bearer,
  discover,
  insecure,
  registerClient,
  startOAuthApp,
} from '../helpers/oauth.ts'
import { SoftwareAuthenticator, registerPasskey } from '../helpers/webauthn.ts'

t.setTimeout(300_000)

type Assertion = ReturnType<SoftwareAuthenticator['get']>
type Options = Parameters<SoftwareAuthenticator['get']>[0]
const optionsOf = (res: Response) => res.json() as Promise<Options>
const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** The passkey form of a page: where it posts, where its script asks for options, its CSRF token. */
function passkeyForm(html: string) {
  const form = /<form method="post" action="([^"]+)" data-passkey-options="([^"]+)" hidden>([\s\S]*?)<\/form>/.exec(
    html,
  )
  if (!form) throw new Error(`no passkey form in ${html}`)
  const csrf = /name="csrf" value="([^"]+)"/.exec(form[3])?.[1] ?? ''
  return { action: form[1], optionsAction: form[2], csrf }
}

// The passkey steps of the OAuth sign-in page without a browser: the page's script is what a software
// authenticator and these requests do (options, assertion, form post). test/oauth/passkey-browser.test.ts
// runs the real script in Chromium.
t.test('passkeys on the OAuth sign-in page', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const client = await registerClient(app, { name: 'Coach Platform' })

  /** A user whose only second factor is a passkey (of `authenticator`). */
  async function passkeyUser() {
    const user = await createUser(app)
    const authenticator = SoftwareAuthenticator.forApp(app)
    await registerPasskey(app, bearer((await login(app, user)).access), authenticator)
    return { user, authenticator }
  }

  /** The authorization request's sign-in page, in a fresh browser-like agent. */
  async function signInPage(scope = 'openid measurements:read') {
    const agent = new FormAgent(url)
    const req = await authorizationRequest(as, client.client, scope)
    const step = await agent.follow(req.url.href)
    if (!step.page) throw new Error('no sign-in page')
    return { agent, req, page: step.page }
  }

  async function optionsFor(agent: Agent, html: string, headers: Record<string, string> = { origin: url }) {
    const form = passkeyForm(html)
    const res = await agent.fetch(form.optionsAction, {
      method: 'POST',
      headers: { ...FORM, ...headers },
      body: new URLSearchParams({ csrf: form.csrf }).toString(),
    })
    return { res, form }
  }

  function postAssertion(agent: Agent, html: string, assertion: unknown, fields: Record<string, string> = {}) {
    const form = passkeyForm(html)
    return agent.follow(form.action, {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: new URLSearchParams({ csrf: form.csrf, assertion: JSON.stringify(assertion), ...fields }).toString(),
    })
  }

  /** Options from the page, answered by `authenticator` (`tamper` changes the assertion first). */
  async function usePasskey(
    agent: Agent,
    html: string,
    authenticator: SoftwareAuthenticator,
    opts: { credential?: number; tamper?: (a: Assertion) => Assertion } = {},
  ) {
    const { res } = await optionsFor(agent, html)
    if (res.status !== 200) throw new Error(`options ${res.status}: ${await res.text()}`)
    const options = (await res.json()) as { challenge: string; allowCredentials?: { id: string }[] }
    const assertion = authenticator.get(options, { credential: opts.credential })
    return {
      options,
      assertion,
      step: await postAssertion(agent, html, opts.tamper ? opts.tamper(assertion) : assertion),
    }
  }

  async function exchange(req: Awaited<ReturnType<typeof signInPage>>['req'], callback: URL) {
    const params = oauth.validateAuthResponse(as, client.client, callback, req.state)
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client.client,
      client.clientAuth,
      params,
      REDIRECT,
      req.verifier,
      insecure,
    )
    return oauth.processAuthorizationCodeResponse(as, client.client, res)
  }

  async function consentAndExchange(
    t: Test,
    agent: Agent,
    req: Awaited<ReturnType<typeof signInPage>>['req'],
    html: string,
  ) {
    t.match(html, /class="scopes"/, 'the consent page follows')
    const offered = [...html.matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1])
    const done = await agent.submit(html, { scope: offered })
    if (!done.left) throw new Error(`not sent back: ${done.page?.html}`)
    return exchange(req, done.left)
  }

  const lastAttempt = async (userId: string) =>
    (
      await queryRows<{ reason: string | null; success: boolean }>(
        app.db,
        sql`select reason, success from login_attempts where user_id = ${userId} order by created_at desc limit 1`,
      )
    )[0]

  const countAttempts = async (userId: string) =>
    (
      await queryRows<{ n: number }>(
        app.db,
        sql`select count(*)::int as n from login_attempts where user_id = ${userId}`,
      )
    )[0].n

  t.test('the script: same origin, integrity-checked, cached for a year; CSP script-src self', async (t) => {
    const { agent, page } = await signInPage()
    const csp = (await agent.fetch(page.url)).headers.get('content-security-policy') ?? ''
    t.match(csp, /default-src 'none'/)
    t.match(csp, /script-src 'self'/)
    t.match(csp, /connect-src 'self'/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval/)
    const scripts = [...page.html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
    t.equal(scripts.length, 1, 'one script element')
    t.equal(scripts[0][2], '', 'no inline script')
    const src = /src="([^"]+)"/.exec(scripts[0][1])?.[1] ?? ''
    const integrity = /integrity="([^"]+)"/.exec(scripts[0][1])?.[1] ?? ''
    t.match(src, /^\/oauth\/assets\/passkey\.[0-9a-f]{16}\.js$/, 'same origin, versioned by content')
    const res = await fetch(`${url}${src}`)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^text\/javascript/)
    t.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    const body = await res.text()
    t.equal(integrity, `sha384-${createHash('sha384').update(body).digest('base64')}`, 'the integrity hash is its own')
    t.notMatch(page.html, /https?:\/\/(?!127)/, 'no external asset')
    // Without script the page is the password form (the passkey form is hidden until the script shows it).
    t.match(page.html, /<form method="post" action="[^"]+\/login">/)
    t.match(page.html, /data-passkey-options="[^"]+" hidden>/)
  })

  t.test('an account whose only second factor is a passkey finishes the sign-in with it', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const { agent, req, page } = await signInPage()
    const second = await agent.submit(page.html, { email: user.email, password: user.password })
    const html = second.page?.html ?? ''
    t.match(html, /Your second factor/)
    t.match(html, /use your passkey/)
    t.notMatch(html, /name="code"/, 'no code form: the account has no TOTP app nor recovery codes')
    t.match(html, /data-passkey-unsupported/, 'a note for a browser without passkeys (or without script)')
    const { options, step } = await usePasskey(agent, html, authenticator)
    t.same(
      options.allowCredentials?.map((c) => c.id),
      [authenticator.credentials[0].id.toString('base64url')],
      'the options name the account’s passkeys',
    )
    const tokens = await consentAndExchange(t, agent, req, step.page?.html ?? '')
    t.equal(tokens.scope, 'openid measurements:read')
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(claims?.sub, user.id)
    t.same(claims?.amr, ['pwd', 'hwk', 'user'], 'the ID token says password and passkey')
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(tokens.access_token) })).status, 200)
    t.same(await lastAttempt(user.id), { reason: null, success: true }, 'in the login history')
  })

  t.test('an account with a passkey and a TOTP app is offered both', async (t) => {
    const user = await createUser(app)
    const headers = bearer((await login(app, user)).access)
    const { secret } = await enrolTotp(app, headers, Date.now())
    const authenticator = SoftwareAuthenticator.forApp(app)
    await registerPasskey(app, headers, authenticator)
    const { agent, req, page } = await signInPage()
    const second = await agent.submit(page.html, { email: user.email, password: user.password })
    const html = second.page?.html ?? ''
    t.match(html, /use your passkey, or enter the code of your authenticator app, or a recovery code/)
    t.match(html, /data-passkey-options=/)
    t.match(html, /name="code"/)
    t.notMatch(html, /data-passkey-unsupported/, 'the code works without script')
    // The code (next time step: each step counts once) finishes it as before.
    const done = await agent.submit(html, { code: await totpAt(secret, Date.now() + 30_000) })
    const tokens = await consentAndExchange(t, agent, req, done.page?.html ?? '')
    t.same(oauth.getValidatedIdTokenClaims(tokens)?.amr, ['pwd', 'otp'])
  })

  t.test('passwordless: "Sign in with a passkey" on the first step', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const { agent, req, page } = await signInPage()
    const { options, step } = await usePasskey(agent, page.html, authenticator)
    t.same(options.allowCredentials ?? [], [], 'no account named: a discoverable credential')
    t.equal((options as { userVerification?: string }).userVerification, 'required')
    const tokens = await consentAndExchange(t, agent, req, step.page?.html ?? '')
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(claims?.sub, user.id)
    t.same(claims?.amr, ['hwk', 'user'])
    t.same(await lastAttempt(user.id), { reason: null, success: true })
  })

  t.test('a wrong or forged assertion is refused and counted', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const { agent, page } = await signInPage()
    const second = await agent.submit(page.html, { email: user.email, password: user.password })
    const html = second.page?.html ?? ''
    const forged = await usePasskey(agent, html, authenticator, {
      tamper: (a) => ({ ...a, response: { ...a.response, signature: Buffer.alloc(70, 1).toString('base64url') } }),
    })
    t.equal(forged.step.page?.status, 401)
    t.match(forged.step.page?.html, /This passkey could not be verified for this account/)
    t.match(forged.step.page?.html, /Your second factor/, 'the second step again')
    t.same(await lastAttempt(user.id), { reason: 'invalid_mfa_code', success: false }, 'a failed second factor')
    const garbage = await postAssertion(agent, html, { not: 'an assertion' })
    t.equal(garbage.page?.status, 401)
    const notJson = await agent.follow(passkeyForm(html).action, {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: new URLSearchParams({ csrf: passkeyForm(html).csrf, assertion: '{' }).toString(),
    })
    t.equal(notJson.page?.status, 401, 'not JSON: refused, not a 500')
    // The honest assertion still works afterwards (a new ceremony).
    const ok = await usePasskey(agent, html, authenticator)
    t.match(ok.step.page?.html, /class="scopes"/)
  })

  t.test("another user's passkey cannot be the second factor (BOLA)", async (t) => {
    const a = await passkeyUser()
    const b = await passkeyUser()
    const { agent, page } = await signInPage()
    const second = await agent.submit(page.html, { email: a.user.email, password: a.user.password })
    const html = second.page?.html ?? ''
    // B's authenticator answers A's challenge with B's own credential.
    const stolen = await usePasskey(agent, html, b.authenticator, { credential: 0 })
    t.equal(stolen.step.page?.status, 401)
    t.match(stolen.step.page?.html, /This passkey could not be verified/)
    const [bKey] = await queryRows<{ last_used_at: Date | null }>(
      app.db,
      sql`select last_used_at from passkeys where user_id = ${b.user.id}`,
    )
    t.equal(bKey.last_used_at, null, 'B’s passkey was not used')
    // Passwordless with B's passkey signs in B, never A: the credential names its own account.
    const other = await signInPage()
    const own = await usePasskey(other.agent, other.page.html, b.authenticator)
    const tokens = await consentAndExchange(t, other.agent, other.req, own.step.page?.html ?? '')
    t.equal(oauth.getValidatedIdTokenClaims(tokens)?.sub, b.user.id)
  })

  t.test('a challenge answers one ceremony of this sign-in only', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const { agent, req, page } = await signInPage()
    const { assertion, step } = await usePasskey(agent, page.html, authenticator)
    t.match(step.page?.html, /class="scopes"/, 'signed in')
    // The same assertion again, on a new sign-in of the same browser: refused.
    const again = await signInPage()
    const replay = await postAssertion(again.agent, again.page.html, assertion)
    t.equal(replay.page?.status, 401, 'a replayed assertion is refused')
    // A challenge the API gave out (POST /v1/auth/passkey/options) does not answer this page's ceremony.
    const fromApi = await app.inject({
      method: 'POST',
      url: '/v1/auth/passkey/options',
      headers: { 'x-auth-token': await sharedClient(app) },
    })
    t.equal(fromApi.statusCode, 200)
    await optionsFor(again.agent, again.page.html) // the page's own ceremony is under way
    const foreign = await postAssertion(again.agent, again.page.html, authenticator.get(fromApi.json()))
    t.equal(foreign.page?.status, 401, 'an assertion of another ceremony is refused')
    // Nor is the page's challenge usable twice: options, one post, the same post again.
    const third = await signInPage()
    const first = await usePasskey(third.agent, third.page.html, authenticator, {
      tamper: (a) => ({ ...a, response: { ...a.response, signature: Buffer.alloc(70, 1).toString('base64url') } }),
    })
    t.equal(first.step.page?.status, 401)
    const retried = await postAssertion(third.agent, third.page.html, first.assertion)
    t.equal(retried.page?.status, 401, 'the honest assertion after a failed try needs new options')
    await consentAndExchange(t, agent, req, step.page?.html ?? '')
    t.ok(user.id)
  })

  t.test('CSRF: the passkey forms need their token and this origin', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const attempts = await countAttempts(user.id)
    const { agent, page } = await signInPage()
    const form = passkeyForm(page.html)
    const noToken = await agent.fetch(form.optionsAction, {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: '',
    })
    t.equal(noToken.status, 400, 'options without the token')
    t.equal(await errorOf(noToken), 'validation_failed')
    const wrongToken = await agent.fetch(form.optionsAction, {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: new URLSearchParams({ csrf: 'x'.repeat(43) }).toString(),
    })
    t.equal(wrongToken.status, 400)
    t.equal(await errorOf(wrongToken), 'interaction_expired')
    const crossSite = await optionsFor(agent, page.html, { origin: 'https://evil.example' })
    t.equal(crossSite.res.status, 400, 'options asked from another origin')
    const { res } = await optionsFor(agent, page.html)
    const assertion = authenticator.get(await optionsOf(res))
    const missing = await agent.fetch(form.action, {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: new URLSearchParams({ assertion: JSON.stringify(assertion) }).toString(),
    })
    t.equal(missing.status, 400, 'the assertion without the token')
    const evil = await agent.fetch(form.action, {
      method: 'POST',
      headers: { ...FORM, origin: 'https://evil.example' },
      body: new URLSearchParams({ csrf: form.csrf, assertion: JSON.stringify(assertion) }).toString(),
    })
    t.equal(evil.status, 400, 'the assertion posted from another origin')
    // Another browser (no interaction cookie) with the right token: nothing.
    const stranger = await fetch(new URL(form.action, url), {
      method: 'POST',
      headers: { ...FORM, origin: url },
      body: new URLSearchParams({ csrf: form.csrf, assertion: JSON.stringify(assertion) }).toString(),
      redirect: 'manual',
    })
    t.equal(stranger.status, 400)
    t.equal(await countAttempts(user.id), attempts, 'nothing was checked for the account')
  })

  t.test('the account backoff of the API login applies to the passkey step', async (t) => {
    const { user, authenticator } = await passkeyUser()
    const { agent, page } = await signInPage()
    const second = await agent.submit(page.html, { email: user.email, password: user.password })
    const html = second.page?.html ?? ''
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) {
      const { res } = await optionsFor(agent, html)
      const assertion = authenticator.get(await optionsOf(res))
      const bad = {
        ...assertion,
        response: { ...assertion.response, signature: Buffer.alloc(70, i).toString('base64url') },
      }
      statuses.push((await postAssertion(agent, html, bad)).page?.status ?? 0)
    }
    t.ok(statuses.includes(429), `backoff after repeated failures (${statuses.join(',')})`)
    const { res } = await optionsFor(agent, html)
    const honest = await postAssertion(agent, html, authenticator.get(await optionsOf(res)))
    t.equal(honest.page?.status, 429, 'the right passkey while in backoff is not even checked')
    t.match(honest.page?.html, /wait before trying again|try again later/)
  })
})
