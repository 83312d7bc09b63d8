import { eq } from 'drizzle-orm'
import t from 'tap'
import { passkeys } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts'
import { bearer, createClient, lastMail, login, userWithToken } from '../helpers/fixtures.ts'
import { clientPost, decodeJwt } from '../helpers/http.ts'
import { freePort } from '../helpers/processes.ts'

// In the page, globalThis is window. The page the test loads at http://localhost:<port>/passkey-test: it asks the server for options,
// runs the WebAuthn ceremony and posts the result, as an app's web view would.
const PAGE = `<!doctype html><meta charset="utf-8"><title>passkey test</title><script>
async function api(path, headers, body) {
  const init = { method: 'POST', headers: { ...headers } }
  if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body) }
  const r = await fetch(path, init)
  return { status: r.status, body: await r.json() }
}
async function create(options) {
  const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
  return cred.toJSON()
}
async function get(options) {
  const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) })
  return cred.toJSON()
}
window.register = async (access, name) => {
  const auth = { authorization: 'Bearer ' + access }
  const options = await api('/v1/users/me/passkeys/options', auth)
  if (options.status !== 200) return options
  return api('/v1/users/me/passkeys', auth, { name, response: await create(options.body) })
}
window.registrationOnly = async (access) => {
  const options = await api('/v1/users/me/passkeys/options', { authorization: 'Bearer ' + access })
  return create(options.body)
}
window.passkeyLogin = async (client) => {
  const options = await api('/v1/auth/passkey/options', { 'x-auth-token': client })
  return api('/v1/auth/passkey/login', { 'x-auth-token': client }, { response: await get(options.body) })
}
window.assertion = (options) => get(options)
window.secondFactor = async (client, mfaToken) => {
  const options = await api('/v1/auth/mfa/passkey/options', { 'x-auth-token': client }, { mfa_token: mfaToken })
  if (options.status !== 200) return options
  return api('/v1/auth/mfa/verify', { 'x-auth-token': client }, { mfa_token: mfaToken, passkey: await get(options.body) })
}
window.reauthenticate = async (access) => {
  const auth = { authorization: 'Bearer ' + access }
  const options = await api('/v1/auth/reauthenticate/passkey-options', auth)
  if (options.status !== 200) return options
  return api('/v1/auth/reauthenticate', auth, { passkey: await get(options.body) })
}
</script>`

interface ApiResult {
  status: number
  body: Record<string, unknown>
}

t.test(
  'passkeys in a real browser: register, second factor, passwordless login, step-up, counters',
  { skip: skipWithoutChromium },
  async (t) => {
    const port = await freePort()
    const origin = `http://localhost:${port}`
    const app = await buildTestApp(t, { env: { PUBLIC_URL: origin } })
    t.equal(app.config.WEBAUTHN_RP_ID, 'localhost', 'the RP ID defaults to PUBLIC_URL’s host')
    t.same(app.config.webauthnOrigins, [origin])
    await app.listen({ port, host: 'localhost' })
    const client = await createClient(app)
    const post = clientPost(app, client.x_auth_token)

    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (e) => problems.push(e.message))
    await page.route(`${origin}/passkey-test`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE }),
    )
    await page.goto(`${origin}/passkey-test`)
    const cdp = await page.context().newCDPSession(page)
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
    const inPage = <T = ApiResult>(fn: string, ...args: unknown[]) =>
      page.evaluate(
        ([f, a]) =>
          (globalThis as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[f as string](
            ...(a as unknown[]),
          ),
        [fn, args] as const,
      ) as Promise<T>

    const a = await userWithToken(app)
    const b = await userWithToken(app)

    // Registration
    const registered = await inPage('register', a.tokens.access, 'Test laptop')
    t.equal(registered.status, 201, JSON.stringify(registered.body))
    t.match(registered.body, {
      id: String,
      name: 'Test laptop',
      created: String,
      last_used: null,
      clone_warning: false,
      transports: Array,
    })
    const passkeyId = registered.body.id as string
    const list = await app.inject({ method: 'GET', url: '/v1/users/me/passkeys', headers: a.headers })
    t.same(
      list.json().data.map((p: { id: string }) => p.id),
      [passkeyId],
    )
    t.equal((await lastMail(app, a.user.email, 'mfa_factor_added'))?.kind, 'mfa_factor_added')

    // A second factor after the password
    const step = await post('/v2/auth/login', { email: a.user.email, password: a.user.password })
    t.equal(step.statusCode, 401)
    t.equal(step.json().error, 'mfa_required')
    const second = await inPage('secondFactor', client.x_auth_token, step.json().mfa_token)
    t.equal(second.status, 200, JSON.stringify(second.body))
    const secondClaims = decodeJwt(second.body.access as string)
    t.equal(secondClaims.sub, a.user.id)
    t.same(secondClaims.amr, ['pwd', 'hwk', 'user'])
    t.equal(secondClaims.aal, 2)
    const bStep = await post('/v2/auth/login', { email: b.user.email, password: b.user.password })
    t.equal(bStep.statusCode, 200, 'B has no factor: the seed contract')

    // Passwordless, discoverable
    const passwordless = await inPage('passkeyLogin', client.x_auth_token)
    t.equal(passwordless.status, 200, JSON.stringify(passwordless.body))
    t.same(Object.keys(passwordless.body).sort(), ['access', 'expiresIn', 'refresh'])
    const claims = decodeJwt(passwordless.body.access as string)
    t.equal(claims.sub, a.user.id)
    t.same(claims.amr, ['hwk', 'user'])
    t.equal(claims.aal, 2)
    const sessions = await app.inject({
      method: 'GET',
      url: '/v1/users/me/sessions',
      headers: bearer(passwordless.body as { access: string }),
    })
    const current = sessions.json().data.find((s: { current: boolean }) => s.current)
    t.equal(current.method, 'passkey')

    // One challenge, one ceremony: the same assertion a second time is refused (any process: the challenge is in the DB).
    const options = (await post('/v1/auth/passkey/options', undefined)).json()
    t.equal(options.userVerification, 'required')
    t.equal(options.rpId, 'localhost')
    const assertion = await inPage<Record<string, unknown>>('assertion', options)
    const once = await post('/v1/auth/passkey/login', { response: assertion })
    t.equal(once.statusCode, 200)
    const twice = await post('/v1/auth/passkey/login', { response: assertion })
    t.equal(twice.statusCode, 401)
    t.same(twice.json(), { error: 'passkey_rejected', message: 'This passkey could not be verified for this account.' })

    const [row] = await app.db.select().from(passkeys).where(eq(passkeys.id, passkeyId))
    t.ok(row.counter > 0, `the signature counter is kept (${row.counter})`)
    t.ok(row.lastUsedAt, 'last used is recorded')

    // Step-up with a passkey: A's password session predates nothing, but the account has a factor.
    const deleteKey = (headers: Record<string, string>, id = passkeyId) =>
      app.inject({ method: 'DELETE', url: `/v1/users/me/passkeys/${id}`, headers })
    const stale = await deleteKey(a.headers)
    t.equal(stale.json().error, 'reauthentication_required')
    const reauth = await inPage('reauthenticate', a.tokens.access)
    t.equal(reauth.status, 200, JSON.stringify(reauth.body))
    t.same(decodeJwt(reauth.body.access as string).amr, ['hwk', 'user'])
    const noKey = await app.inject({
      method: 'POST',
      url: '/v1/auth/reauthenticate/passkey-options',
      headers: b.headers,
    })
    t.equal(noKey.json().error, 'no_passkey')

    // Cross-user: B cannot see, rename or delete A's passkey
    const bList = await app.inject({ method: 'GET', url: '/v1/users/me/passkeys', headers: b.headers })
    t.same(bList.json(), { data: [], next_cursor: null })
    const bRename = await app.inject({
      method: 'PATCH',
      url: `/v1/users/me/passkeys/${passkeyId}`,
      headers: b.headers,
      payload: { name: 'mine now' },
    })
    t.equal(bRename.statusCode, 404)
    const bFresh = bearer(await login(app, b.user))
    t.equal((await deleteKey(bFresh)).statusCode, 404)
    const renamed = await app.inject({
      method: 'PATCH',
      url: `/v1/users/me/passkeys/${passkeyId}`,
      headers: a.headers,
      payload: { name: 'Work laptop' },
    })
    t.equal(renamed.json().name, 'Work laptop')

    // A counter that goes backwards: a cloned authenticator may exist; the passkey is refused and flagged.
    await app.db.update(passkeys).set({ counter: 1_000_000 }).where(eq(passkeys.id, passkeyId))
    const cloned = await inPage('passkeyLogin', client.x_auth_token)
    t.equal(cloned.status, 401)
    t.equal(cloned.body.error, 'passkey_rejected')
    const flagged = await app.inject({ method: 'GET', url: '/v1/users/me/passkeys', headers: a.headers })
    t.equal(flagged.json().data[0].clone_warning, true)
    t.equal((await lastMail(app, a.user.email, 'mfa_passkey_clone_warning'))?.kind, 'mfa_passkey_clone_warning')

    // Deleting it, with the fresh re-authentication: the login is the password alone again.
    const deleted = await deleteKey(bearer(reauth.body as { access: string }))
    t.equal(deleted.statusCode, 200)
    t.equal((await post('/v2/auth/login', { email: a.user.email, password: a.user.password })).statusCode, 200)
    // A registration response works for the account whose challenge it answers, once: not for another account.
    const captured = await inPage<Record<string, unknown>>('registrationOnly', b.tokens.access)
    const stolen = await app.inject({
      method: 'POST',
      url: '/v1/users/me/passkeys',
      headers: a.headers,
      payload: { response: captured },
    })
    t.equal(stolen.statusCode, 400)
    t.equal(stolen.json().error, 'passkey_rejected')
    const own = await app.inject({
      method: 'POST',
      url: '/v1/users/me/passkeys',
      headers: b.headers,
      payload: { response: captured },
    })
    t.equal(own.statusCode, 201, 'the account it was made for registers it')
    const again = await app.inject({
      method: 'POST',
      url: '/v1/users/me/passkeys',
      headers: b.headers,
      payload: { response: captured },
    })
    t.equal(again.statusCode, 400, 'its challenge works once')
    t.equal(again.json().error, 'passkey_rejected')
    t.same(problems, [], 'no script errors in the page')
  },
)
