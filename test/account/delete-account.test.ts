import t from 'tap'
import { loginAttemptsUnknown } from '../../db/schema/index.ts'
import { emailKey } from '../../routes/auth/history-repository.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, login, sharedClient, userWithToken } from '../helpers/fixtures.ts'
import { adminWithToken, rowsMentioning, tablesWithUserId } from '../helpers/user.ts'

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
  return { ...u, second }
}

type Busy = Awaited<ReturnType<typeof busyUser>>
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
  const app = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const a = await busyUser(app)
  const b = await busyUser(app)
  await linkUsers(app, a, b)
  const needlesA = [a.user.id, a.user.email, emailKey(a.user.email)]
  const before = new Set((await rowsMentioning(app, needlesA)).map((r) => r.table))
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
    'peer_group_members',
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
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: b.headers })).statusCode, 200)
    t.same(
      (await app.inject({ method: 'GET', url: '/v1/shared', headers: b.headers })).json().data,
      [],
      'the share is gone',
    )
    const groups = await app.inject({ method: 'GET', url: `/v1/user/${b.user.id}/group`, headers: b.headers })
    t.same(groups.json(), [], 'the group died with its second-to-last member')
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
