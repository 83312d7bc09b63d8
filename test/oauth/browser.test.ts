import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { createUser } from '../helpers/fixtures.ts'
import { authorizationRequest, bearer, discover, insecure, registerClient, startOAuthApp } from '../helpers/oauth.ts'

t.setTimeout(600_000)

// The sign-in and consent pages in Debian's chromium on a phone-sized screen, the code exchanged by
// oauth4webapi; then Swagger UI's "Authorize" (code + PKCE) on /docs against the same server.
t.test('OAuth pages in a real browser', { skip: skipWithoutChromium }, async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const user = await createUser(app)
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  mkdirSync('test-output', { recursive: true })

  t.test('sign-in and consent on a phone, a subset of the scopes, the code exchanged', async (t) => {
    // The app's redirect URI: a server of its own (the browser follows the redirect to it), as the integrator's.
    let callback: URL | undefined
    const appServer = createServer((req, res) => {
      // Only the callback itself (the browser asks for /favicon.ico afterwards).
      const at = new URL(req.url ?? '/', 'http://127.0.0.1')
      if (at.pathname === '/callback') callback = at
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>connected</p>')
    })
    await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => appServer.close(resolve)))
    const APP_REDIRECT = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`
    const client = await registerClient(app, { name: 'Coach Platform', redirectUris: [APP_REDIRECT] })
    const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', (e) => problems.push(e.message))
    page.on('console', (m) => {
      // The wrong password below is answered 401 on purpose; chromium logs any 4xx document.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text())
    })
    const req = await authorizationRequest(
      as,
      client.client,
      'offline_access measurements:read journal:read sleep:read',
      APP_REDIRECT,
    )
    await page.goto(req.url.href)
    await page.waitForSelector('input[name=email]')
    t.match(await page.locator('h1').innerText(), /Sign in to NOWATCH/)
    t.match(await page.locator('body').innerText(), /Coach Platform wants to connect/)
    const fits = () => page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')
    t.ok(await fits(), 'the sign-in page fits a phone screen')
    await page.screenshot({ path: 'test-output/oauth-sign-in.png' })
    await page.fill('input[name=email]', user.email)
    await page.fill('input[name=password]', 'Wrong-password-1!')
    await page.click('button[type=submit]')
    await page.waitForLoadState('load')
    await page.waitForSelector('.error:visible')
    t.match(await page.locator('.error:visible').innerText(), /Email or password is incorrect/)
    await page.fill('input[name=password]', user.password)
    await page.click('button[type=submit]')
    await page.waitForSelector('ul.scopes')
    t.match(await page.locator('h1').innerText(), /Allow Coach Platform\?/)
    const listed = await page
      .locator('ul.scopes input[name=scope]')
      .evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value))
    t.same(listed.sort(), ['journal:read', 'measurements:read', 'offline_access', 'sleep:read'])
    t.match(await page.locator('ul.scopes').innerText(), /Read your health measurements/, 'each scope in plain words')
    t.ok(await fits(), 'the consent page fits a phone screen')
    await page.screenshot({ path: 'test-output/oauth-consent.png', fullPage: true })
    await page.locator('input[value="journal:read"]').uncheck()
    await Promise.all([page.waitForURL(`${APP_REDIRECT}**`), page.click('button:has-text("Allow")')])
    t.ok(callback, 'back at the redirect URI')
    if (callback) callback = new URL(`${APP_REDIRECT}${callback.search}`)
    t.equal(callback?.searchParams.get('state'), req.state)
    const params = oauth.validateAuthResponse(as, client.client, callback as URL, req.state)
    const tokens = await oauth.processAuthorizationCodeResponse(
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
    t.same(new Set(tokens.scope?.split(' ')), new Set(['offline_access', 'measurements:read', 'sleep:read']))
    t.ok(tokens.refresh_token)
    t.equal((await fetch(`${url}/v1/checkins`, { headers: bearer(tokens.access_token) })).status, 403)
    t.equal(
      (await fetch(`${url}/v1/sleep/daily?from=2024-01-01&to=2024-01-02`, { headers: bearer(tokens.access_token) }))
        .status,
      200,
    )
    t.same(problems, [], 'no script or CSP errors on the pages')
  })

  t.test('Swagger UI on /docs authorizes with authorization code + PKCE against this server', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 4000 } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const authorizeRequests: URL[] = []
    context.on('request', (r) => {
      if (r.url().startsWith(`${url}/oauth/authorize`)) authorizeRequests.push(new URL(r.url()))
    })
    await page.goto(`${url}/docs`, { waitUntil: 'networkidle' })
    await page.click('.auth-wrapper .authorize')
    const oauthBox = page.locator('.auth-container', { hasText: 'oauth2' })
    await oauthBox.waitFor()
    t.equal(
      await oauthBox.locator('input#client_id, input[data-name=clientId]').first().inputValue(),
      'nwc_nowatchApiDocsSwaggerU',
    )
    await oauthBox
      .locator(
        'label[for="oauth2-authorizationCode-profile:read-checkbox-authorizationCode"], input[id*="profile:read"]',
      )
      .first()
      .check({ force: true })
      .catch(() => {})
    const [popup] = await Promise.all([context.waitForEvent('page'), oauthBox.locator('button.authorize').click()])
    await popup.waitForSelector('input[name=email]')
    await popup.fill('input[name=email]', user.email)
    await popup.fill('input[name=password]', user.password)
    await popup.click('button[type=submit]')
    await popup.waitForSelector('ul.scopes')
    await Promise.all([popup.waitForEvent('close'), popup.click('button:has-text("Allow")')])
    const first = authorizeRequests[0]
    t.ok(first, 'Swagger UI opened this server’s authorization endpoint')
    t.equal(first?.searchParams.get('code_challenge_method'), 'S256', 'with PKCE S256')
    t.ok(first?.searchParams.get('code_challenge'))
    t.equal(first?.searchParams.get('redirect_uri'), `${url}/docs/static/oauth2-redirect.html`)
    await page
      .locator('.auth-container', { hasText: 'oauth2' })
      .locator('button:has-text("Logout")')
      .waitFor({ timeout: 20_000 })
    t.pass('Swagger UI holds a token from this server')
    await page.screenshot({
      path: 'test-output/oauth-docs-authorized.png',
      clip: { x: 0, y: 0, width: 1280, height: 1200 },
    })
  })
})
