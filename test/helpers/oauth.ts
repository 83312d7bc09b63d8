import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import type { Test } from 'tap'
import { buildApp } from '../../app.ts'
import { createOAuthClientRepository } from '../../routes/oauth/repository.ts'
import { testConfig } from './app.ts'
import { freshDatabase } from './database.ts'

/**
 * The app listening on a loopback port of its own, with PUBLIC_URL (the issuer) that very address: the
 * socket is bound first (port 0), then the app is built for it and serves its requests. `host`
 * `localhost` names it so (a browser's WebAuthn needs a domain as RP ID, not an IP address).
 */
export async function startOAuthApp(
  t: Test,
  env: Record<string, string> = {},
  { host = '127.0.0.1' }: { host?: '127.0.0.1' | 'localhost' } = {},
) {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://${host}:${(server.address() as AddressInfo).port}`
  const database = await freshDatabase()
  const app = await buildApp({ config: testConfig({ PUBLIC_URL: url, ...env }), database, logger: false })
  await app.ready()
  server.on('request', (req, res) => app.routing(req, res))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await app.close()
    await database.close()
  })
  return { app, url, issuer: new URL(url) }
}

export const REDIRECT = 'http://127.0.0.1:9/callback'
export const insecure = { [oauth.allowInsecureRequests]: true } as const

export async function registerClient(
  app: { db: Parameters<typeof createOAuthClientRepository>[0] },
  opts: { scopes?: string[]; public?: boolean; redirectUris?: string[]; name?: string } = {},
) {
  const { row, secret } = await createOAuthClientRepository(app.db).create({
    name: opts.name ?? 'Coach Platform',
    redirectUris: opts.redirectUris ?? [REDIRECT],
    scopes: opts.scopes ?? [
      'openid',
      'offline_access',
      'profile:read',
      'measurements:read',
      'measurements:write',
      'journal:read',
      'statistics:read',
      'sleep:read',
      'insights:read',
    ],
    public: opts.public ?? false,
  })
  const client: oauth.Client = { client_id: row.id }
  const clientAuth = secret ? oauth.ClientSecretBasic(secret) : oauth.None()
  return { client, clientAuth, secret, id: row.id }
}

export async function discover(issuer: URL) {
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure))
}

/** A browser without a browser: cookies, manual redirects, forms read from the HTML. */
export class FormAgent {
  cookies = new Map<string, string>()
  constructor(readonly origin: string) {}

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    const res = await fetch(new URL(url, this.origin), { ...init, headers, redirect: 'manual' })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }

  /** Follows redirects from `url` until one leaves this server (answers that URL) or a page is shown. */
  async follow(
    url: string,
    init: RequestInit = {},
  ): Promise<{ page?: { url: string; html: string; status: number }; left?: URL }> {
    let res = await this.fetch(url, init)
    let at = new URL(url, this.origin)
    for (let hops = 0; hops < 10; hops++) {
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, at)
        if (next.origin !== this.origin) return { left: next }
        at = next
        res = await this.fetch(next.href)
        continue
      }
      return { page: { url: at.href, html: await res.text(), status: res.status } }
    }
    throw new Error('too many redirects')
  }

  async submit(html: string, fields: Record<string, string | string[]>, which = 0) {
    const forms = [...html.matchAll(/<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/g)]
    const form = forms[which]
    if (!form) throw new Error(`no form ${which} in ${html}`)
    const body = new URLSearchParams()
    for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) body.append(m[1], m[2])
    for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one)
    return this.follow(form[1].replace(/&amp;/g, '&'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    })
  }
}

/** The authorization request of a client: PKCE S256, state, exact redirect URI. */
export async function authorizationRequest(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  scope: string,
  redirectUri = REDIRECT,
) {
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(as.authorization_endpoint as string)
  url.searchParams.set('client_id', client.client_id)
  url.searchParams.set('redirect_uri', redirectUri)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', scope)
  url.searchParams.set('state', state)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  url.searchParams.set('code_challenge_method', 'S256')
  return { url, verifier, state }
}

/**
 * Signs in and consents on the server's pages (fetch and forms), answering where the browser was sent
 * back to. `untick` leaves those scopes unchecked on the consent page.
 */
export async function signInAndConsent(
  agent: FormAgent,
  url: URL,
  user: { email: string; password: string },
  opts: { untick?: string[]; expectConsent?: boolean } = {},
): Promise<{ callback: URL; sawConsent: boolean; sawSignIn: boolean }> {
  let step = await agent.follow(url.href)
  let sawConsent = false
  let sawSignIn = false
  for (let i = 0; i < 4 && step.page; i++) {
    const html = step.page.html
    if (html.includes('name="password"')) {
      sawSignIn = true
      step = await agent.submit(html, { email: user.email, password: user.password })
    } else if (html.includes('class="scopes"')) {
      sawConsent = true
      const offered = [...html.matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1])
      step = await agent.submit(html, { scope: offered.filter((s) => !opts.untick?.includes(s)) })
    } else {
      throw new Error(`unexpected page ${step.page.status}: ${html}`)
    }
  }
  if (!step.left) throw new Error(`not sent back: ${step.page?.html}`)
  return { callback: step.left, sawConsent, sawSignIn }
}

export interface OAuthCtx {
  url: string
  as: oauth.AuthorizationServer
  agent?: FormAgent
}

/** The whole code flow for `client`: sign-in and consent on the pages, the code exchanged with its verifier. */
export async function obtainTokens(
  ctx: OAuthCtx,
  c: { client: oauth.Client; clientAuth: oauth.ClientAuth },
  user: { email: string; password: string },
  scope: string,
  opts: { untick?: string[]; agent?: FormAgent } = {},
) {
  const agent = opts.agent ?? new FormAgent(ctx.url)
  const req = await authorizationRequest(ctx.as, c.client, scope)
  const flow = await signInAndConsent(agent, req.url, user, opts)
  const params = oauth.validateAuthResponse(ctx.as, c.client, flow.callback, req.state)
  const res = await oauth.authorizationCodeGrantRequest(
    ctx.as,
    c.client,
    c.clientAuth,
    params,
    REDIRECT,
    req.verifier,
    insecure,
  )
  const tokens = await oauth.processAuthorizationCodeResponse(ctx.as, c.client, res)
  return { tokens, flow, agent }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
