import * as oauth from 'oauth4webapi'
import t from 'tap'
import { createUser, login } from '../helpers/fixtures.ts'
import { bearer, discover, insecure, obtainTokens, registerClient, startOAuthApp } from '../helpers/oauth.ts'
import { adminWithToken } from '../helpers/user.ts'
import { type Receiver, startReceiver } from '../helpers/webhooks.ts'

t.setTimeout(600_000)

interface Event {
  type: string
  data: Record<string, unknown>
}

/** Every event delivered so far to `receiver`, each delivery verified with `secret` (batches opened). */
function eventsOf(receiver: Receiver, secret: string): Event[] {
  return receiver.deliveries.flatMap((d) => {
    const body = receiver.verify(secret, d) as Event & { data: { events?: Event[] } }
    return body.type === 'batch' ? (body.data.events ?? []) : [body]
  })
}

t.test("authorization.revoked: to the app's and the user's subscriptions, whichever way the grant ends", async (t) => {
  const { app, url, issuer } = await startOAuthApp(t, { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' })
  const ctx = { url, as: await discover(issuer) }
  const admin = await adminWithToken(app)
  const receivers = { coach: await startReceiver(), other: await startReceiver(), own: await startReceiver() }
  t.teardown(() => Promise.all(Object.values(receivers).map((r) => r.close())))
  const coach = await registerClient(app, { name: 'Coach Platform' })
  const other = await registerClient(app, { name: 'Other App' })

  const subscribe = async (clientId: string, receiver: Receiver, eventTypes: string[]) => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/admin/oauth-clients/${clientId}/webhooks`,
      headers: admin.headers,
      payload: { url: receiver.url, event_types: eventTypes },
    })
    t.equal(res.statusCode, 201, res.body)
    t.match(res.json(), { oauth_client_id: clientId, client_id: null, user_id: null })
    return res.json().secret as string
  }
  const secrets = {
    coach: await subscribe(coach.id, receivers.coach, [
      'authorization.revoked',
      'measurements.created',
      'checkin.created',
      'user.deleted',
    ]),
    other: await subscribe(other.id, receivers.other, ['authorization.revoked', 'measurements.created']),
  }
  const flush = async () => {
    await app.webhooks.flush()
    await app.webhooks.idle()
  }
  const coachEvents = () => eventsOf(receivers.coach, secrets.coach)

  const a = await createUser(app)
  const aHeaders = bearer((await login(app, a)).access)
  const own = await app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    headers: aHeaders,
    payload: { url: receivers.own.url, event_types: ['authorization.revoked'] },
  })
  t.equal(own.statusCode, 201, own.body)
  const ownSecret = own.json().secret as string

  const grantOf = async (userHeaders: Record<string, string>, clientId: string) => {
    const list = await app.inject({ method: 'GET', url: '/v1/users/me/authorizations', headers: userHeaders })
    return (list.json().data as Array<{ id: string; client_id: string }>).find((g) => g.client_id === clientId)?.id
  }

  t.test("an app's subscription gets its users' changes within the grant's scopes only", async (t) => {
    await obtainTokens(ctx, coach, a, 'measurements:read')
    const stranger = await createUser(app)
    const sample = { type: 'heart_rate', timestamp: '2026-11-20T08:00:00Z', value: 61 }
    for (const u of [a, stranger]) {
      const h = bearer((await login(app, u)).access)
      await app.inject({ method: 'POST', url: '/v1/measurements', headers: h, payload: { samples: [sample] } })
      await app.inject({ method: 'POST', url: '/v1/checkins', headers: h, payload: { mood: 3 } })
    }
    await flush()
    t.same(
      coachEvents().map((e) => [e.type, e.data.user_id]),
      [['measurements.created', a.id]],
      'no check-in (journal:read not granted), nothing of a user who granted nothing',
    )
    t.equal(receivers.other.deliveries.length, 0, 'an app the user did not grant hears nothing')
  })

  t.test('the user removes the grant: one thin, signed event to the app and to the user', async (t) => {
    const grantId = await grantOf(aHeaders, coach.id)
    const before = coachEvents().length
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/authorizations/${grantId}`,
      headers: aHeaders,
    })
    t.equal(res.statusCode, 200)
    await flush()
    const revoked = { user_id: a.id, client_id: coach.id, grant_id: grantId }
    t.match(coachEvents().slice(before), [{ type: 'authorization.revoked', data: revoked }])
    t.same(Object.keys(coachEvents()[before].data).sort(), ['client_id', 'grant_id', 'user_id'], 'ids only')
    t.match(eventsOf(receivers.own, ownSecret), [{ type: 'authorization.revoked', data: revoked }])
    t.equal(receivers.other.deliveries.length, 0, 'not to another app')
    // Past the grant, the app hears no more of the user's changes.
    await app.inject({
      method: 'POST',
      url: '/v1/measurements',
      headers: aHeaders,
      payload: { samples: [{ type: 'heart_rate', timestamp: '2026-11-20T09:00:00Z', value: 62 }] },
    })
    await flush()
    t.equal(coachEvents().length, before + 1)
  })

  t.test('a refresh token used twice revokes the grant: announced too', async (t) => {
    const { tokens } = await obtainTokens(ctx, coach, a, 'offline_access measurements:read')
    const grantId = await grantOf(aHeaders, coach.id)
    const refresh = async (token: string) =>
      oauth.processRefreshTokenResponse(
        ctx.as,
        coach.client,
        await oauth.refreshTokenGrantRequest(ctx.as, coach.client, coach.clientAuth, token, insecure),
      )
    await refresh(tokens.refresh_token as string)
    const before = coachEvents().length
    await t.rejects(refresh(tokens.refresh_token as string), { error: 'invalid_grant' } as never)
    await flush()
    t.match(coachEvents().slice(before), [
      { type: 'authorization.revoked', data: { user_id: a.id, client_id: coach.id, grant_id: grantId } },
    ])
    t.equal(await grantOf(aHeaders, coach.id), undefined, 'the grant is gone')
  })

  t.test('an admin revokes the app: every grant of it is announced, to that app only', async (t) => {
    const b = await createUser(app)
    await obtainTokens(ctx, other, a, 'measurements:read')
    await obtainTokens(ctx, other, b, 'measurements:read')
    const grants = [await grantOf(aHeaders, other.id), await grantOf(bearer((await login(app, b)).access), other.id)]
    const coachBefore = coachEvents().length
    const ownBefore = receivers.own.deliveries.length
    const res = await app.inject({
      method: 'POST',
      url: `/v1/admin/oauth-clients/${other.id}/revoke`,
      headers: admin.headers,
    })
    t.equal(res.statusCode, 200, res.body)
    await flush()
    const events = eventsOf(receivers.other, secrets.other)
    t.same(events.map((e) => e.data.grant_id).sort(), [...grants].sort(), 'one event per grant')
    t.ok(events.every((e) => e.type === 'authorization.revoked' && e.data.client_id === other.id))
    t.same(events.map((e) => e.data.user_id).sort(), [a.id, b.id].sort())
    t.equal(coachEvents().length, coachBefore, 'the other app hears nothing')
    t.match(eventsOf(receivers.own, ownSecret).slice(ownBefore), [
      { type: 'authorization.revoked', data: { user_id: a.id, client_id: other.id } },
    ])
    const again = await app.inject({
      method: 'POST',
      url: `/v1/admin/oauth-clients/${other.id}/revoke`,
      headers: admin.headers,
    })
    t.equal(again.statusCode, 200)
    await flush()
    t.equal(eventsOf(receivers.other, secrets.other).length, events.length, 'revoking again announces nothing')
  })

  t.test('the account is deleted: its grants are announced with user.deleted', async (t) => {
    const c = await createUser(app)
    const cHeaders = bearer((await login(app, c)).access)
    await obtainTokens(ctx, coach, c, 'measurements:read')
    const grantId = await grantOf(cHeaders, coach.id)
    const before = coachEvents().length
    const res = await app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: cHeaders,
      payload: { password: c.password },
    })
    t.equal(res.statusCode, 200, res.body)
    await flush()
    const events = coachEvents().slice(before)
    t.same(events.map((e) => e.type).sort(), ['authorization.revoked', 'user.deleted'])
    t.match(
      events.find((e) => e.type === 'authorization.revoked'),
      { data: { user_id: c.id, client_id: coach.id, grant_id: grantId } },
    )
  })

  t.test('BOLA: a user cannot reach an app subscription; an OAuth client id that does not exist is 404', async (t) => {
    const list = await app.inject({ method: 'GET', url: '/v1/webhooks', headers: aHeaders })
    t.same(
      list.json().data.map((s: { id: string }) => s.id),
      [own.json().id],
      "the user's list holds their own subscription only",
    )
    const asUser = await app.inject({
      method: 'GET',
      url: `/v1/admin/oauth-clients/${coach.id}/webhooks`,
      headers: aHeaders,
    })
    t.equal(asUser.statusCode, 403)
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/admin/oauth-clients/nwc_AAAAAAAAAAAAAAAAAAAAAA/webhooks',
      headers: admin.headers,
    })
    t.equal(missing.statusCode, 404)
    t.equal(missing.json().error, 'not_found')
  })
})
