import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { buildTestApp } from '../helpers/app.ts'
import { createClient, createUser, lastMail, login, userWithToken } from '../helpers/fixtures.ts'
import { adminWithToken } from '../helpers/user.ts'
import { startReceiver } from '../helpers/webhooks.ts'

const METRICS_TOKEN = 'metrics-token-metrics-token-0123456789'
const ENV = { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_TIMEOUT_MS: '1000', METRICS_TOKEN }

t.test('webhooks: signed, thin, batched, retried with the same id, disabled by 410 and by failures', async (t) => {
  const app = await buildTestApp(t, { env: ENV })
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const alice = await userWithToken(app)
  const due = () => app.db.execute(sql`update webhook_messages set next_attempt_at = now() where status = 'pending'`)

  const created = await alice.call('POST', '/v1/webhooks', {
    url: receiver.url,
    event_types: ['checkin.created', 'checkin.deleted', 'measurements.created'],
    description: 'my server',
  })
  t.equal(created.status, 201)
  t.match(created.body, {
    id: String,
    url: receiver.url,
    event_types: ['checkin.created', 'checkin.deleted', 'measurements.created'],
    status: 'active',
    user_id: alice.user.id,
    client_id: null,
    secret: /^whsec_[A-Za-z0-9+/]{43}=$/,
  })
  const { id: subId, secret } = created.body
  const shown = await alice.call('GET', `/v1/webhooks/${subId}`)
  t.notOk('secret' in shown.body, 'the secret is shown once')

  t.test('one change, one signed message with a thin body', async (t) => {
    const checkin = await alice.call('POST', '/v1/checkins', { mood: 2, note: 'private words' })
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, 1)
    const d = receiver.deliveries[0]
    t.match(d.id, /^msg_[0-9a-f]{32}$/)
    t.same(receiver.verify(secret, d), d.json, 'standardwebhooks verifies it')
    t.same(d.json.data, { user_id: alice.user.id, seq: 1, id: checkin.body.id })
    t.equal(d.json.type, 'checkin.created')
    t.notMatch(d.body, /private words|"mood"/, 'no journal or health data in the body')
    t.equal(d.headers['content-type'], 'application/json')
    t.throws(() => receiver.verify(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, d), 'another secret fails')
  })

  t.test('many changes at once arrive as one batch, in seq order; other event types are not sent', async (t) => {
    const before = receiver.deliveries.length
    await alice.call('PATCH', '/v1/users/me', { first_name: 'Al' })
    await alice.call('POST', '/v1/measurements', {
      samples: [
        { type: 'heart_rate', timestamp: '2026-11-20T08:00:00Z', value: 61 },
        { type: 'heart_rate', timestamp: '2026-11-20T08:10:00Z', value: 71 },
      ],
    })
    for (let i = 0; i < 3; i++) await alice.call('POST', '/v1/checkins', { mood: 3 })
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 1)
    const batch = receiver.deliveries[before]
    receiver.verify(secret, batch)
    t.equal(batch.json.type, 'batch')
    const events = (batch.json.data as { events: Array<{ type: string; data: { seq: number } }> }).events
    t.same(
      events.map((e) => e.type),
      ['measurements.created', 'checkin.created', 'checkin.created', 'checkin.created'],
      'profile.updated is not subscribed',
    )
    t.same(
      events.map((e) => e.data.seq),
      [3, 4, 5, 6],
    )
    t.match(events[0], {
      data: {
        user_id: alice.user.id,
        range: { type: 'heart_rate', from: '2026-11-20T08:00:00.000Z', to: '2026-11-20T08:10:00.000Z', count: 2 },
      },
    })
    t.notMatch(batch.body, /"value"/, 'no sample values')
  })

  t.test('a 500 is retried later with the same webhook-id and body', async (t) => {
    const before = receiver.deliveries.length
    receiver.answer(500)
    await alice.call('POST', '/v1/checkins', { mood: 4 })
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 1)
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 1, 'not again at once: the next try waits about 5 s')
    const [pending] = await queryRows<{ wait: number }>(
      app.db,
      sql`select extract(epoch from next_attempt_at - now())::float8 as wait from webhook_messages where status = 'pending'`,
    )
    t.ok(pending.wait > 3 && pending.wait < 7, `next attempt in ${pending.wait} s`)
    const metrics = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    })
    t.match(metrics.body, /^job_queue_depth\{queue="webhooks"\} 1$/m, 'the waiting message is the webhook queue')
    await due()
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 2)
    const [first, second] = receiver.deliveries.slice(before)
    t.equal(second.id, first.id, 'same webhook-id')
    t.equal(second.body, first.body, 'same body')
    receiver.verify(secret, first)
    receiver.verify(secret, second)
    const log = await alice.call('GET', `/v1/webhooks/${subId}/attempts?limit=2`)
    t.match(log.body.data, [
      { message_id: first.id, attempt: 2, status_code: 200, error: null, latency_ms: Number },
      { message_id: first.id, attempt: 1, status_code: 500, error: 'http_500' },
    ])
  })

  t.test('no answer within the timeout is retried with the same id', async (t) => {
    const before = receiver.deliveries.length
    receiver.answer('hang')
    await alice.call('POST', '/v1/checkins', { mood: 5 })
    await app.webhooks.flush()
    await due()
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 2)
    t.equal(receiver.deliveries[before + 1].id, receiver.deliveries[before].id)
    const log = await alice.call('GET', `/v1/webhooks/${subId}/attempts?limit=2`)
    t.match(log.body.data, [
      { attempt: 2, status_code: 200, error: null },
      { attempt: 1, status_code: null, error: 'timeout' },
    ])
    const messages = await alice.call('GET', `/v1/webhooks/${subId}/messages?limit=1`)
    t.match(messages.body.data, [
      { id: receiver.deliveries[before].id, status: 'succeeded', attempts: 2, event_count: 1 },
    ])
  })

  t.test('manual redelivery, test event, secret rotation with two signatures', async (t) => {
    const before = receiver.deliveries.length
    const last = receiver.deliveries[before - 1]
    const again = await alice.call('POST', `/v1/webhooks/${subId}/messages/${last.id}/redeliver`)
    t.match(again, { status: 202, body: { id: last.id, status: 'pending' } })
    await app.webhooks.flush()
    t.equal(receiver.deliveries[before].id, last.id)
    t.equal(receiver.deliveries[before].body, last.body)

    const test = await alice.call('POST', `/v1/webhooks/${subId}/test`)
    t.equal(test.status, 202)
    await app.webhooks.flush()
    const d = receiver.deliveries[before + 1]
    t.equal(d.id, test.body.message_id)
    t.match(receiver.verify(secret, d), { type: 'webhook.test', data: { subscription_id: subId } })

    const rotated = await alice.call('POST', `/v1/webhooks/${subId}/rotate`)
    t.equal(rotated.status, 200)
    t.not(rotated.body.secret, secret)
    await alice.call('POST', `/v1/webhooks/${subId}/test`)
    await app.webhooks.flush()
    const both = receiver.deliveries[before + 2]
    t.equal(both.signature.split(' ').length, 2, 'signed with the new and the previous secret')
    receiver.verify(secret, both)
    receiver.verify(rotated.body.secret, both)
    const now = await alice.call('POST', `/v1/webhooks/${subId}/rotate?overlap_s=0`)
    await alice.call('POST', `/v1/webhooks/${subId}/test`)
    await app.webhooks.flush()
    const single = receiver.deliveries[before + 3]
    t.equal(single.signature.split(' ').length, 1)
    receiver.verify(now.body.secret, single)
    t.throws(
      () => receiver.verify(rotated.body.secret, single),
      'a secret rotated away with overlap 0 no longer verifies',
    )
  })

  t.test('410 disables the subscription and tells the owner', async (t) => {
    const before = receiver.deliveries.length
    receiver.answer(410)
    await alice.call('POST', '/v1/checkins', { mood: 1 })
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 1)
    const sub = await alice.call('GET', `/v1/webhooks/${subId}`)
    t.match(sub.body, { status: 'disabled', disabled_reason: 'receiver_gone', disabled_at: String })
    t.match(await lastMail(app, alice.user.email, 'webhook_disabled'), { subject: /webhook was disabled/ })
    await alice.call('POST', '/v1/checkins', { mood: 2 })
    await due()
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 1, 'nothing more is sent')
    const enabled = await alice.call('PATCH', `/v1/webhooks/${subId}`, { status: 'active' })
    t.match(enabled.body, { status: 'active', disabled_reason: null })
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 2, 'enabled again: the waiting message goes')
  })

  t.test('a message failing every retry disables the subscription', async (t) => {
    const before = receiver.deliveries.length
    receiver.answer(503)
    await alice.call('POST', '/v1/checkins', { mood: 2 })
    await app.webhooks.flush()
    // Skip ahead: the message has used every attempt of the schedule but the last.
    await app.db.execute(
      sql`update webhook_messages set attempts = 9, next_attempt_at = now() where status = 'pending'`,
    )
    receiver.answer(503)
    await app.webhooks.flush()
    t.equal(receiver.deliveries.length, before + 2)
    const sub = await alice.call('GET', `/v1/webhooks/${subId}`)
    t.match(sub.body, { status: 'disabled', disabled_reason: 'failing' })
    const messages = await alice.call('GET', `/v1/webhooks/${subId}/messages?limit=1`)
    t.match(messages.body.data, [{ status: 'failed', attempts: 10, next_attempt_at: null }])
  })

  t.test('cross-user: another account cannot see or touch the subscription', async (t) => {
    const bob = await userWithToken(app)
    t.same((await bob.call('GET', '/v1/webhooks')).body, { data: [], next_cursor: null })
    const calls: Array<[Parameters<typeof bob.call>[0], string, unknown?]> = [
      ['GET', `/v1/webhooks/${subId}`],
      ['PATCH', `/v1/webhooks/${subId}`, { status: 'disabled' }],
      ['POST', `/v1/webhooks/${subId}/rotate`],
      ['POST', `/v1/webhooks/${subId}/test`],
      ['GET', `/v1/webhooks/${subId}/messages`],
      ['GET', `/v1/webhooks/${subId}/attempts`],
      ['POST', `/v1/webhooks/${subId}/messages/msg_${'0'.repeat(32)}/redeliver`],
      ['DELETE', `/v1/webhooks/${subId}`],
    ]
    for (const [method, url, body] of calls) {
      t.match(await bob.call(method, url, body), { status: 404, body: { error: 'not_found' } }, `${method} ${url}`)
    }
    const bobs = await bob.call('POST', '/v1/webhooks', { url: receiver.url, event_types: ['checkin.created'] })
    const before = receiver.deliveries.length
    await alice.call('POST', '/v1/checkins', { mood: 3 })
    await app.webhooks.flush()
    t.notOk(
      receiver.deliveries.slice(before).some((d) => receiver.verify(bobs.body.secret, d) && true),
      "alice's change never reaches bob's subscription",
    )
    t.same(await alice.call('DELETE', `/v1/webhooks/${subId}`), { status: 200, body: { status: 'success' } })
    t.match(await alice.call('GET', `/v1/webhooks/${subId}`), { status: 404 })
  })

  t.test('bad input', async (t) => {
    const cases: Array<[unknown, string]> = [
      [{ url: receiver.url, event_types: [] }, 'event_types'],
      [{ url: receiver.url, event_types: ['checkin.exploded'] }, 'event_types[0]'],
      [{ url: 'ftp://example.com/x', event_types: ['checkin.created'] }, 'url'],
      [{ url: 'not a url', event_types: ['checkin.created'] }, 'url'],
      [{ event_types: ['checkin.created'] }, 'url'],
    ]
    for (const [body, field] of cases) {
      const res = await alice.call('POST', '/v1/webhooks', body)
      t.match(res, { status: 400, body: { error: 'validation_failed', details: [{ field }] } }, field)
    }
  })
})

t.test("a client app's subscription (admin API) gets its users' events, user.deleted included", async (t) => {
  const app = await buildTestApp(t, { env: ENV })
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const admin = await adminWithToken(app)
  const partner = await createClient(app, 'partner app')
  const bobUser = await createUser(app)
  const bobTokens = await login(app, bobUser, partner.x_auth_token)
  const bob = { authorization: `Bearer ${bobTokens.access}` }
  const carol = await userWithToken(app)

  const created = await app.inject({
    method: 'POST',
    url: `/v1/admin/clients/${partner.client_id}/webhooks`,
    headers: admin.headers,
    payload: { url: receiver.url, event_types: ['checkin.created', 'user.deleted'] },
  })
  t.equal(created.statusCode, 201)
  const sub = created.json()
  t.match(sub, { client_id: partner.client_id, user_id: null, secret: /^whsec_/ })
  const listed = await app.inject({
    method: 'GET',
    url: `/v1/admin/clients/${partner.client_id}/webhooks`,
    headers: admin.headers,
  })
  t.match(listed.json(), { data: [{ id: sub.id }] })
  const asUser = await app.inject({
    method: 'GET',
    url: `/v1/admin/clients/${partner.client_id}/webhooks`,
    headers: carol.headers,
  })
  t.equal(asUser.statusCode, 403)
  const unknownClient = await app.inject({
    method: 'GET',
    url: `/v1/admin/clients/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/webhooks`,
    headers: admin.headers,
  })
  t.equal(unknownClient.statusCode, 404)

  await app.inject({ method: 'POST', url: '/v1/checkins', headers: bob, payload: { mood: 3 } })
  await carol.call('POST', '/v1/checkins', { mood: 3 })
  await app.webhooks.flush()
  t.equal(receiver.deliveries.length, 1, "only the app's own user: carol never used the partner app")
  t.match(receiver.verify(sub.secret, receiver.deliveries[0]), {
    type: 'checkin.created',
    data: { user_id: bobUser.id },
  })

  const deleted = await app.inject({
    method: 'DELETE',
    url: `/v1/admin/users/${bobUser.id}`,
    headers: admin.headers,
  })
  t.equal(deleted.statusCode, 200, deleted.body)
  await app.webhooks.flush()
  t.equal(receiver.deliveries.length, 2)
  t.match(receiver.verify(sub.secret, receiver.deliveries[1]), {
    type: 'user.deleted',
    data: { user_id: bobUser.id },
  })
  const [audited] = await queryRows<{ n: number }>(
    app.db,
    sql`select count(*)::int as n from audit_log where action = 'webhook.create' and target_id = ${sub.id}`,
  )
  t.equal(audited.n, 1, 'the admin action is audited')
})
