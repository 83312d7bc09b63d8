import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import type { Page } from 'playwright-core'
import t from 'tap'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { createUser, login } from '../helpers/fixtures.ts'
import { enrolTotp, totpAt } from '../helpers/mfa.ts'
import { authorizationRequest, bearer, discover, insecure, registerClient, startOAuthApp } from '../helpers/oauth.ts'

t.setTimeout(600_000)

// A page of the test itself at the server's origin (intercepted by the browser, never served): it
// registers a passkey for a bearer with the browser's own WebAuthn, as the app's settings screen would.
const REGISTER_PAGE = `<!doctype html><meta charset="utf-8"><title>register</title><script>
window.register = async (access) => {
  const auth = { authorization: 'Bearer ' + access }
  const options = await (await fetch('/v1/users/me/passkeys/options', { method: 'POST', headers: auth })).json()
  const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
  const r = await fetch('/v1/users/me/passkeys', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ response: cred.toJSON() }) })
  return r.status
}
</script>`

// The OAuth sign-in page's passkey steps in Debian's Chromium with a CDP virtual authenticator (ctap2,
// internal, resident keys, user verification), through the whole code + PKCE flow of oauth4webapi:
// (a) an account whose only second factor is a passkey, (b) passwordless; and without script, password
// and TOTP still work.
t.test('passkeys on the OAuth pages in a real browser', { skip: skipWithoutChromium }, async (t) => {
  const { app, url, issuer } = await startOAuthApp(t, {}, { host: 'localhost' })
  t.equal(app.config.WEBAUTHN_RP_ID, 'localhost')
  const as = await discover(issuer)
  let callback: URL | undefined
  const appServer = createServer((req, res) => {
    const at = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (at.pathname === '/callback') callback = at
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>connected</p>')
  })
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => appServer.close(resolve)))
  const APP_REDIRECT = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  await page.route(`${url}/register-passkey`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: REGISTER_PAGE }),
  )

  const user = await createUser(app)
  await page.goto(`${url}/register-passkey`)
  const registered = await page.evaluate(
    (access) => (globalThis as unknown as { register(a: string): Promise<number> }).register(access),
    (await login(app, user)).access,
  )
  t.equal(registered, 201, 'a passkey registered in the browser’s authenticator')

  /** Runs the flow for `client` until the browser is back at the app, then exchanges the code. */
  async function flow(
    on: Page,
    client: Awaited<ReturnType<typeof registerClient>>,
    scope: string,
    signIn: () => Promise<void>,
  ) {
    callback = undefined
    const req = await authorizationRequest(as, client.client, scope, APP_REDIRECT)
    await on.goto(req.url.href)
    await on.waitForSelector('input[name=email]')
    await signIn()
    await on.waitForSelector('ul.scopes')
    await Promise.all([on.waitForURL(`${APP_REDIRECT}**`), on.click('button:has-text("Allow")')])
    // Set by the app server's handler (TypeScript cannot see that assignment).
    const back = callback as URL | undefined
    if (!back) throw new Error('not back at the app')
    const params = oauth.validateAuthResponse(as, client.client, new URL(`${APP_REDIRECT}${back.search}`), req.state)
    return oauth.processAuthorizationCodeResponse(
      as,
      client.client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client.client,
        client.clientAuth,
        params,
        APP_REDIRECT,
        req.verifier,
        insecure,
      ),
    )
  }

  t.test('(a) the passkey is the second factor after the password', async (t) => {
    const client = await registerClient(app, { name: 'Coach Platform', redirectUris: [APP_REDIRECT] })
    const tokens = await flow(page, client, 'openid offline_access measurements:read', async () => {
      t.ok(await page.locator('button:has-text("Sign in with a passkey")').isVisible(), 'offered with script')
      await page.fill('input[name=email]', user.email)
      await page.fill('input[name=password]', user.password)
      await page.click('button:has-text("Sign in")')
      await page.waitForSelector('h1:has-text("Your second factor")')
      t.equal(await page.locator('input[name=code]').count(), 0, 'no code form: a passkey is the only factor')
      t.notOk(await page.locator('[data-passkey-unsupported]').isVisible(), 'no "unsupported" note here')
      await page.screenshot({ path: 'test-output/oauth-passkey-second-factor.png' })
      await page.click('button:has-text("Use a passkey")')
    })
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(claims?.sub, user.id)
    t.same(claims?.amr, ['pwd', 'hwk', 'user'])
    t.ok(tokens.refresh_token)
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(tokens.access_token) })).status, 200)
  })

  t.test('(b) passwordless: "Sign in with a passkey"', async (t) => {
    await context.clearCookies()
    const client = await registerClient(app, { name: 'Research Study', redirectUris: [APP_REDIRECT] })
    const tokens = await flow(page, client, 'openid measurements:read', async () => {
      await page.click('button:has-text("Sign in with a passkey")')
    })
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    t.equal(claims?.sub, user.id)
    t.same(claims?.amr, ['hwk', 'user'])
    t.same(problems, [], 'no script or CSP errors on the pages')
  })

  t.test('without script: password and TOTP as before, no passkey button', async (t) => {
    const other = await createUser(app)
    const { secret } = await enrolTotp(app, bearer((await login(app, other)).access), Date.now())
    const noScript = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 375, height: 740 } })
    t.teardown(() => noScript.close())
    const plain = await noScript.newPage()
    const client = await registerClient(app, { name: 'Clinic Dashboard', redirectUris: [APP_REDIRECT] })
    const tokens = await flow(plain, client, 'measurements:read', async () => {
      t.notOk(await plain.locator('button:has-text("Sign in with a passkey")').isVisible(), 'hidden without script')
      await plain.fill('input[name=email]', other.email)
      await plain.fill('input[name=password]', other.password)
      await plain.click('button:has-text("Sign in")')
      await plain.waitForSelector('input[name=code]')
      await plain.fill('input[name=code]', await totpAt(secret, Date.now() + 30_000)) // the next step: each step counts once
      await plain.click('button:has-text("Continue")')
    })
    t.equal(tokens.scope, 'measurements:read')
  })
})
