import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { loginAttemptsUnknown } from '../../db/schema/index.ts'
import { emailKey } from '../../routes/auth/history-repository.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { createMfaRepository } from '../../routes/mfa/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, lastMail, login, sharedClient, userWithToken } from '../helpers/fixtures.ts'
import {
  type OAuthCtx,
  bearer as bearerToken,
  discover,
  obtainTokens,
  registerClient,
  startOAuthApp,
} from '../helpers/oauth.ts'
import { jsonSpan, logsBody, metricsBody, ns, tracesBody } from '../helpers/telemetry.ts'
import { adminWithToken, rowsMentioning, tablesWithUserId } from '../helpers/user.ts'
import { startReceiver } from '../helpers/webhooks.ts'

/** A user with a row in every table of this tree that can hold one of theirs. */
async function busyUser(app: Awaited<ReturnType<typeof buildTestApp>>) {
  const u = await userWithToken(app)
  const second = await login(app, u.user)
  await app.inject({
    method: 'PUT',
    url: '/v1/users/me/settings',
    headers: u.headers,
    payload: { units: 'imperial', 'notifications-security__email': false },
  })
  await app.inject({
    method: 'PATCH',
    url: '/v1/users/me',
    headers: u.headers,
    payload: { weight: 70, time_zone: 'Europe/Helsinki' },
  })
  const client = await sharedClient(app)
  // A failed login (user_id set), a failed one kept by the address's hash only (typed before the account
  // existed), and mail queued to the address.
  await app.inject({
    method: 'POST',
    url: '/v2/auth/login',
    headers: { 'x-auth-token': client },
    payload: { email: u.user.email, password: 'Wrong-password-1!' },
  })
  await app.db
    .insert(loginAttemptsUnknown)
    .values({ emailHash: emailKey(u.user.email), reason: 'invalid_credentials', ip: '10.0.0.1' })
  await app.inject({
    method: 'POST',
    url: '/v1/auth/forgot_password',
    headers: { 'x-auth-token': client },
    payload: { email: u.user.email },
  })
  await app.afterAnswer.idle() // the reset mail is queued just after the answer
  // The app's telemetry sent with the user's token: a span, a metric point and a log record with user_id.
  const now = new Date()
  for (const [url, payload] of [
    ['/v1/telemetry/traces', tracesBody([jsonSpan({ name: 'sync' })])],
    [
      '/v1/telemetry/metrics',
      metricsBody([{ name: 'battery', gauge: { dataPoints: [{ timeUnixNano: ns(now), asInt: 80 }] } }]),
    ],
    ['/v1/telemetry/logs', logsBody([{ timeUnixNano: ns(now), body: { stringValue: 'synced' } }])],
  ] as const) {
    const res = await app.inject({ method: 'POST', url, headers: u.headers, payload })
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.body}`)
  }
  return { ...u, second }
}

/** The user's telemetry rows, by table. */
async function telemetryOf(app: Awaited<ReturnType<typeof buildTestApp>>, userId: string) {
  const [row] = await queryRows<{ spans: number; points: number; logs: number }>(
    app.db,
    sql`select (select count(*)::int from telemetry_spans where user_id = ${userId}) as spans,
               (select count(*)::int from telemetry_metric_points where user_id = ${userId}) as points,
               (select count(*)::int from telemetry_logs where user_id = ${userId}) as logs`,
  )
  return row
}

/**
 * Peer groups around A, beyond the pair of linkUsers: a group A created with B and C (it outlives A), A's pending
 * invite in it to D, and B's pending invite to A. None of these tables has a foreign key to users (Citus).
 */
async function groupsAroundA(app: Awaited<ReturnType<typeof buildTestApp>>, a: Busy, b: Busy) {
  const [c, d] = [await userWithToken(app), await userWithToken(app)]
  const invite = async (
    from: { user: { id: string }; headers: Record<string, string> },
    email: string,
    group?: string,
  ) => {
    const url = group ? `/v1/user/${from.user.id}/group/${group}/invite` : `/v1/user/${from.user.id}/group/invite`
    const res = await app.inject({ method: 'POST', url, headers: from.headers, payload: { email } })
    if (res.statusCode !== 200) throw new Error(res.body)
    return res.json().at(-1).id as string
  }
  const accept = async (who: { user: { id: string }; headers: Record<string, string> }, group: string) => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/user/${who.user.id}/group/${group}/accept`,
      headers: who.headers,
    })
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  const lasting = await invite(a, b.user.email)
  await accept(b, lasting)
  await invite(a, c.user.email, lasting)
  await accept(c, lasting)
  await invite(a, d.user.email, lasting)
  const dLink = (await lastMail(app, d.user.email, 'group_invite'))?.text.match(
    /\/v1\/group\/[0-9a-f-]+\/invite\/[A-Za-z0-9_-]+\/accept/,
  )?.[0] as string
  const bs = await invite(b, a.user.email)
  return { c, d, lasting, dLink, bs }
}

const inviteCodes = (app: Awaited<ReturnType<typeof buildTestApp>>) =>
  queryRows<{ invitee: string | null }>(
    app.db,
    sql`select i.invitee_id as invitee from peer_group_invite_codes c
          left join peer_group_invites i on i.group_id = c.group_id and i.id = c.invite_id and i.code_hash = c.code_hash`,
  )

type Busy = Awaited<ReturnType<typeof busyUser>>

/**
 * The tables distributed by a key of their own on Citus, which have no foreign key to users (docs/scaling.md):
 * account deletion removes the user's rows there by its own steps, not by a cascade. `subscription` is the
 * user's webhook subscription (its messages, attempts and events are found by it).
 */
const GLOBAL_ROWS: Record<string, (userId: string, subscription: string) => ReturnType<typeof sql>> = {
  webhook_subscriptions: (_u, s) => sql`select count(*)::int as n from webhook_subscriptions where id = ${s}`,
  webhook_messages: (_u, s) => sql`select count(*)::int as n from webhook_messages where subscription_id = ${s}`,
  webhook_attempts: (_u, s) => sql`select count(*)::int as n from webhook_attempts where subscription_id = ${s}`,
  webhook_events: (_u, s) => sql`select count(*)::int as n from webhook_events where subscription_id = ${s}`,
  webauthn_challenges: (u) => sql`select count(*)::int as n from webauthn_challenges where user_id = ${u}`,
  mfa_login_token_keys: (u) => sql`select count(*)::int as n from mfa_login_token_keys where user_id = ${u}`,
  oauth_grants: (u) => sql`select count(*)::int as n from oauth_models where account_id = ${u} and kind = 'Grant'`,
  oauth_tokens: (u) =>
    sql`select count(*)::int as n from oauth_models where account_id = ${u} and kind in ('AccessToken', 'RefreshToken')`,
}

/**
 * A row of the user's in each of those: a webhook subscription of their own (messages, attempts and events come
 * with the changes of linkUsers and a flush), a passkey registration begun and not finished, a login waiting for
 * its second factor (written as the password login writes it), and an OAuth grant with its tokens.
 */
async function globalRows(
  app: Awaited<ReturnType<typeof buildTestApp>>,
  u: Busy,
  receiver: { url: string },
  oauth: { ctx: OAuthCtx; client: Awaited<ReturnType<typeof registerClient>> },
) {
  const sub = await u.call('POST', '/v1/webhooks', {
    url: receiver.url,
    event_types: ['measurements.created', 'checkin.created'],
  })
  if (sub.status !== 201) throw new Error(JSON.stringify(sub.body))
  const options = await u.call('POST', '/v1/users/me/passkeys/options')
  if (options.status !== 200) throw new Error(JSON.stringify(options.body))
  await createMfaRepository(app.db).createLoginToken({
    userId: u.user.id,
    tokenHash: randomBytes(32).toString('hex'),
    clientId: null,
    admin: false,
    ttlS: 300,
  })
  const { tokens } = await obtainTokens(oauth.ctx, oauth.client, u.user, 'offline_access measurements:read')
  return { subscription: sub.body.id as string, oauthAccess: tokens.access_token }
}

async function countGlobalRows(app: Awaited<ReturnType<typeof buildTestApp>>, userId: string, subscription: string) {
  const counts: Record<string, number> = {}
  for (const [name, query] of Object.entries(GLOBAL_ROWS)) {
    counts[name] = (await queryRows<{ n: number }>(app.db, query(userId, subscription)))[0].n
  }
  return counts
}
/** Data across domains that ties A to B: samples of both, a share A → B, a peer group of the two. */
async function linkUsers(app: Awaited<ReturnType<typeof buildTestApp>>, a: Busy, b: Busy) {
  for (const u of [a, b]) {
    const up = await app.inject({
      method: 'POST',
      url: '/v1/measurements',
      headers: u.headers,
      payload: {
        device_id: 'watch-1',
        samples: [
          { type: 'heart_rate', timestamp: new Date(Date.now() - 60_000).toISOString(), value: 61 },
          { type: 'heart_rate', timestamp: new Date(Date.now() - 3 * 3600_000).toISOString(), value: 62 },
        ],
      },
    })
    if (up.statusCode !== 200) throw new Error(up.body)
  }
  // The older sample's hour goes into a compacted block, the recent one stays a row.
  await compactMeasurements(app.db, { before: Date.now() - 3600_000, wait: true })
  const share = await app.inject({
    method: 'POST',
    url: '/v1/sharing/invites',
    headers: a.headers,
    payload: { email: b.user.email, scopes: ['measurement'] },
  })
  await app.inject({ method: 'POST', url: `/v1/shared/invites/${share.json().id}/accept`, headers: b.headers })
  const [group] = (
    await app.inject({
      method: 'POST',
      url: `/v1/user/${a.user.id}/group/invite`,
      headers: a.headers,
      payload: { email: b.user.email },
    })
  ).json()
  await app.inject({ method: 'POST', url: `/v1/user/${b.user.id}/group/${group.id}/accept`, headers: b.headers })
}

t.test('deleting my account removes every row of mine and nothing of anyone else', async (t) => {
  const { app, url, issuer } = await startOAuthApp(t, {
    RATE_LIMIT_ENABLED: 'true',
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_TIMEOUT_MS: '1000',
  })
  const receiver = await startReceiver()
  t.teardown(() => receiver.close())
  const oauth = { ctx: { url, as: await discover(issuer) }, client: await registerClient(app) }
  const a = await busyUser(app)
  const b = await busyUser(app)
  const globalA = await globalRows(app, a, receiver, oauth)
  const globalB = await globalRows(app, b, receiver, oauth)
  await linkUsers(app, a, b)
  const around = await groupsAroundA(app, a, b)
  await app.webhooks.flush() // the changes' events become messages, sent: an attempt each
  const needlesA = [a.user.id, a.user.email, emailKey(a.user.email), globalA.subscription]
  const before = new Set((await rowsMentioning(app, needlesA)).map((r) => r.table))
  const globalBefore = {
    a: await countGlobalRows(app, a.user.id, globalA.subscription),
    b: await countGlobalRows(app, b.user.id, globalB.subscription),
  }
  for (const [who, counts] of Object.entries(globalBefore)) {
    for (const [name, n] of Object.entries(counts)) t.ok(n > 0, `${who.toUpperCase()} has rows in ${name} before`)
  }
  // Nothing of these goes by a cascade from users: none of their tables refers to users any more.
  const toUsers = await queryRows<{ table_name: string }>(
    app.db,
    sql`select c.relname as table_name from pg_constraint con
          join pg_class c on c.oid = con.conrelid join pg_class r on r.oid = con.confrelid
         where con.contype = 'f' and r.relname = 'users'
           and c.relname in ('webhook_subscriptions', 'webhook_messages', 'webhook_attempts', 'webhook_events',
                             'webauthn_challenges', 'mfa_login_token_keys', 'oauth_models')`,
  )
  t.same(toUsers, [], 'no foreign key to users from the global tables: deletion removes their rows itself')
  const telemetryB = await telemetryOf(app, b.user.id)
  t.same(await telemetryOf(app, a.user.id), { spans: 1, points: 1, logs: 1 }, 'A has telemetry')
  t.same(telemetryB, { spans: 1, points: 1, logs: 1 }, 'so has B')
  t.equal((await inviteCodes(app)).length, 2, "two pending group invites (A's to D, B's to A), two code rows")
  for (const table of [
    'users',
    'sessions',
    'user_settings',
    'login_attempts',
    'login_attempts_unknown',
    'mail_outbox',
    'verification_codes',
    'rate_counters',
    'measurements',
    'measurement_quarters',
    'measurement_blocks',
    'shares',
    'peer_groups',
    'peer_group_members',
    'peer_group_invites',
    'telemetry_spans',
    'telemetry_metric_points',
    'telemetry_logs',
  ]) {
    t.ok(before.has(table), `A has rows in ${table} before`)
  }
  t.ok((await tablesWithUserId(app)).includes('user_settings'))

  t.test('a wrong or missing password is refused and deletes nothing', async (t) => {
    const wrong = await app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: a.headers,
      payload: { password: 'Not-my-password-9!' },
    })
    t.equal(wrong.statusCode, 400)
    t.equal(wrong.json().error, 'validation_failed')
    t.same(wrong.json().details, [{ field: 'password', problem: 'is not your current password' }])
    const missing = await app.inject({ method: 'DELETE', url: '/v1/users/me', headers: a.headers, payload: {} })
    t.equal(missing.statusCode, 400)
    t.match(missing.json(), { error: 'validation_failed', details: [{ field: 'password', problem: 'is required' }] })
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: a.headers })).statusCode, 200)
  })

  t.test('the right password deletes everything', async (t) => {
    const res = await app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: a.headers,
      payload: { password: a.user.password },
    })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { status: 'success' })
    t.same(await rowsMentioning(app, needlesA), [], 'no row in any table mentions A')
    t.ok((await rowsMentioning(app, [b.user.id, b.user.email])).length >= 6, "B's rows are all there")
    const zero = Object.fromEntries(Object.keys(GLOBAL_ROWS).map((name) => [name, 0]))
    t.same(
      await countGlobalRows(app, a.user.id, globalA.subscription),
      zero,
      "none of A's subscription, messages, attempts, events, challenges, pending logins, grants or tokens is left",
    )
    t.same(
      await countGlobalRows(app, b.user.id, globalB.subscription),
      globalBefore.b,
      "B's rows in those tables are untouched",
    )
    t.equal(
      (await fetch(`${url}/v1/measurements/types`, { headers: bearerToken(globalA.oauthAccess) })).status,
      401,
      "A's OAuth access token stops",
    )
    t.equal(
      (await fetch(`${url}/v1/measurements/types`, { headers: bearerToken(globalB.oauthAccess) })).status,
      200,
      "B's still works",
    )
    t.equal(
      (await app.inject({ method: 'GET', url: `/v1/webhooks/${globalB.subscription}`, headers: b.headers })).statusCode,
      200,
    )
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: b.headers })).statusCode, 200)
    t.same(
      (await app.inject({ method: 'GET', url: '/v1/shared', headers: b.headers })).json().data,
      [],
      'the share is gone',
    )
    const groups = await app.inject({ method: 'GET', url: `/v1/user/${b.user.id}/group`, headers: b.headers })
    t.same(
      groups.json().map((g: { id: string }) => g.id),
      [around.lasting, around.bs],
      'the group of A and B died with its second-to-last member; the others stay',
    )
    t.match(
      groups.json()[0],
      {
        members: [{ id: b.user.id }, { id: around.c.user.id }],
        pending_invites: [{ created_by: null, email: around.d.user.email }],
      },
      "the group A created lives on with B and C; A's invite to D stays, sent by nobody now",
    )
    t.same(groups.json()[1].pending_invites, [], "B's invite to A is gone")
    t.same(
      await inviteCodes(app),
      [{ invitee: around.d.user.id }],
      "one code row left, naming D's invite: the one of B's invite to A went with it",
    )
    t.equal((await app.inject({ method: 'GET', url: around.dLink })).statusCode, 200, "D's link still opens")
    t.equal((await app.inject({ method: 'POST', url: around.dLink })).statusCode, 303, 'and joins')
    t.same(await telemetryOf(app, a.user.id), { spans: 0, points: 0, logs: 0 }, "A's telemetry is gone")
    t.same(await telemetryOf(app, b.user.id), telemetryB, "B's telemetry is untouched")
    const samples = await app.inject({
      method: 'GET',
      url: '/v1/measurements?type=heart_rate&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z',
      headers: b.headers,
    })
    t.equal(samples.json().data.length, 2, "B's samples stay, compacted and recent")
  })

  t.test('every token of A stops, the next login fails', async (t) => {
    for (const tokens of [a.tokens, a.second]) {
      const res = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(tokens) })
      t.equal(res.statusCode, 401)
      t.equal(res.json().error, 'session_revoked')
    }
    const refresh = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      headers: { 'x-auth-token': await sharedClient(app) },
      payload: { refresh: a.tokens.refresh },
    })
    t.equal(refresh.statusCode, 401)
    const res = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': await sharedClient(app) },
      payload: { email: a.user.email, password: a.user.password },
    })
    t.equal(res.statusCode, 401)
    t.equal(res.json().error, 'invalid_credentials')
  })
})

t.test('wrong passwords are throttled per account', async (t) => {
  const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const a = await userWithToken(app)
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) {
    const res = await app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: a.headers,
      payload: { password: `Wrong-${i}-password!` },
    })
    statuses.push(res.statusCode)
  }
  // Login's curve: five free tries, then each waits (1 s after the fifth).
  t.same(statuses, [400, 400, 400, 400, 400, 429])
})

t.test('an admin deletes an account the same way; only the audit entry keeps its id', async (t) => {
  const app = await buildTestApp(t)
  const admin = await adminWithToken(app)
  const a = await busyUser(app)
  const res = await app.inject({ method: 'DELETE', url: `/v1/admin/users/${a.user.id}`, headers: admin.headers })
  t.equal(res.statusCode, 200, res.body)
  t.same(await rowsMentioning(app, [a.user.id, a.user.email]), [{ table: 'audit_log', column: 'target_id', rows: 1 }])
  t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: a.headers })).statusCode, 401)
  const again = await app.inject({ method: 'DELETE', url: `/v1/admin/users/${a.user.id}`, headers: admin.headers })
  t.equal(again.statusCode, 404)
})
