import { sql } from 'drizzle-orm'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { createUser } from '../helpers/fixtures.ts'
import { FormAgent, bearer, discover, insecure, registerClient, startOAuthApp } from '../helpers/oauth.ts'

t.setTimeout(600_000)

/** The library's device forms (`<form id="op.device…Form" … action="…">` with hidden inputs). */
async function submitDeviceForm(agent: FormAgent, html: string, id: string, fields: Record<string, string>) {
  const form = new RegExp(`<form id="${id.replace('.', '\\.')}"[^>]*action="([^"]+)"[^>]*>([\\s\\S]*?)</form>`).exec(
    html,
  )
  if (!form) throw new Error(`no form ${id} in ${html}`)
  const body = new URLSearchParams()
  for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) body.set(m[1], m[2])
  for (const [k, v] of Object.entries(fields)) body.set(k, v)
  return agent.follow(form[1], {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
  })
}

t.test('device authorization grant (RFC 8628) end to end with oauth4webapi', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t)
  const as = await discover(issuer)
  const user = await createUser(app)
  const watch = await registerClient(app, { public: true, name: 'Gym Screen' })

  async function start(scope = 'offline_access measurements:read') {
    const res = await oauth.deviceAuthorizationRequest(as, watch.client, watch.clientAuth, { scope }, insecure)
    return oauth.processDeviceAuthorizationResponse(as, watch.client, res)
  }
  const poll = (deviceCode: string) =>
    oauth.deviceCodeGrantRequest(as, watch.client, watch.clientAuth, deviceCode, insecure)
  const errorOf = async (res: Response) => ({
    status: res.status,
    error: ((await res.json()) as { error: string }).error,
  })

  /** The user's side: the code page, the confirmation, sign-in, consent. Answers the last page. */
  async function enter(userCode: string, confirm: 'yes' | 'abort' = 'yes') {
    const agent = new FormAgent(url)
    const input = await agent.follow(`${url}/oauth/device`)
    t.match(input.page?.html, /Enter the code your device shows/)
    t.match((await fetch(`${url}/oauth/device`)).headers.get('content-security-policy'), /default-src 'none'/)
    let step = await submitDeviceForm(agent, input.page?.html ?? '', 'op.deviceInputForm', { user_code: userCode })
    t.match(step.page?.html, /Gym Screen/, 'the confirmation names the app')
    step = await submitDeviceForm(
      agent,
      step.page?.html ?? '',
      'op.deviceConfirmForm',
      confirm === 'abort' ? { abort: 'yes' } : {},
    )
    if (confirm === 'abort') return step
    step = await agent.submit(step.page?.html ?? '', { email: user.email, password: user.password })
    t.match(step.page?.html, /class="scopes"/, 'the consent page')
    const offered = [...(step.page?.html ?? '').matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1])
    return agent.submit(step.page?.html ?? '', { scope: offered })
  }

  t.test('pending, slow_down, then tokens once the user approved', async (t) => {
    const device = await start()
    t.match(device, {
      device_code: /.{20,}/,
      user_code: /^[A-Z]{4}-[A-Z]{4}$/,
      verification_uri: `${url}/oauth/device`,
      expires_in: 600,
      interval: 5,
    })
    t.match(device.verification_uri_complete, `${url}/oauth/device?user_code=`)
    t.same(await errorOf(await poll(device.device_code)), { status: 400, error: 'authorization_pending' })
    t.same(await errorOf(await poll(device.device_code)), { status: 400, error: 'slow_down' }, 'polled too soon')
    const done = await enter(device.user_code)
    t.match(done.page?.html, /Gym Screen is connected to your account/)
    const tokens = await oauth.processDeviceCodeResponse(as, watch.client, await poll(device.device_code))
    t.ok(tokens.access_token)
    t.ok(tokens.refresh_token, 'offline_access gives a refresh token')
    t.equal((await fetch(`${url}/v1/measurements/types`, { headers: bearer(tokens.access_token) })).status, 200)
    t.equal((await errorOf(await poll(device.device_code))).error, 'invalid_grant', 'a device code gives tokens once')
  })

  t.test('the interval is announced, and each slow_down raises it by 5 s (RFC 8628 §3.2, §3.5)', async (t) => {
    const device = await start()
    t.equal(device.interval, 5, 'the device authorization answer names the interval')
    /** oauth4webapi's reading of a poll: the tokens, or the RFC 8628 error it throws. */
    const outcome = async () => {
      try {
        await oauth.processDeviceCodeResponse(as, watch.client, await poll(device.device_code))
        return 'tokens'
      } catch (err) {
        if (err instanceof oauth.ResponseBodyError) return err.error
        throw err
      }
    }
    /** The previous poll, moved `s` seconds into the past (instead of waiting on a loaded machine). */
    const lastPollAgo = (s: number) =>
      queryRows(
        app.db,
        sql`update oauth_models set last_used_at = now() - make_interval(secs => ${s})
             where kind = 'DevicePoll' and id = ${device.device_code} returning id`,
      )
    const interval = async () =>
      (
        await queryRows<{ interval: number }>(
          app.db,
          sql`select (payload->>'interval')::int as interval from oauth_models
               where kind = 'DevicePoll' and id = ${device.device_code}`,
        )
      )[0]?.interval
    t.equal(await outcome(), 'authorization_pending', 'the first poll')
    await lastPollAgo(5.5)
    t.equal(await outcome(), 'authorization_pending', '5 s after the previous one: on time')
    t.equal(await outcome(), 'slow_down', 'at once: too soon')
    t.equal(await interval(), 10, 'the interval is now 10 s')
    await lastPollAgo(6)
    t.equal(await outcome(), 'slow_down', '6 s later: the raised interval is not over, so it rises again')
    t.equal(await interval(), 15)
    await lastPollAgo(12)
    t.equal(await outcome(), 'slow_down', '12 s later: still sooner than 15 s (now 20)')
    await lastPollAgo(21)
    t.equal(await outcome(), 'authorization_pending', 'after the raised interval: on time')
    await lastPollAgo(21)
    t.equal(await outcome(), 'authorization_pending', 'the interval stays raised, it does not come back down')
    t.equal(await interval(), 20)
    t.match(await (await poll(device.device_code)).json(), {
      error: 'slow_down',
      error_description: /every 25 seconds/,
    })
  })

  t.test('the user cancels: access_denied', async (t) => {
    const device = await start()
    await enter(device.user_code, 'abort')
    t.same(await errorOf(await poll(device.device_code)), { status: 400, error: 'access_denied' })
  })

  t.test('an expired device code: expired_token', async (t) => {
    const device = await start()
    await queryRows(
      app.db,
      sql`update oauth_models set expires_at = now() - interval '1 second',
            payload = jsonb_set(payload, '{exp}', to_jsonb(extract(epoch from now())::int - 1))
          where kind = 'DeviceCode' and id = ${device.device_code} returning id`,
    )
    t.same(await errorOf(await poll(device.device_code)), { status: 400, error: 'expired_token' })
  })

  t.test('a wrong user code is refused on the page', async (t) => {
    const agent = new FormAgent(url)
    const input = await agent.follow(`${url}/oauth/device`)
    const step = await submitDeviceForm(agent, input.page?.html ?? '', 'op.deviceInputForm', { user_code: 'BCDF-GHJK' })
    t.match(step.page?.html, /This code is not valid/)
  })
})
