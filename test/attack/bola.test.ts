import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { createMfaRepository } from '../../routes/mfa/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

// Broken object level authorization, as a matrix: every operation of openapi.yaml whose path takes
// an object id is called with the OWNER's ids by the owner, a stranger, a viewer holding a share
// with only some scopes, and an admin. Who may see what is the table below; nobody else gets more.
t.test('object-level authorization matrix over every id-taking route', async (t) => {
  const app = await buildTestApp(t)
  const [owner, stranger, viewer, admin] = [
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app, { role: 'admin' }),
  ]
  const call = (who: { headers: Record<string, string> }, method: string, url: string, payload?: object) =>
    app.inject({ method: method as 'GET', url, headers: who.headers, ...(payload ? { payload } : {}) })

  // The owner's objects, one of each kind.
  const day = (n: number) => new Date(Date.now() - n * 86400_000)
  const checkins: Array<{ id: string }> = []
  for (const n of [0, 1, 2]) {
    checkins.push((await call(owner, 'POST', '/v1/checkins', { mood: 4, timestamp: day(n).toISOString() })).json())
  }
  const date = day(1).toISOString().slice(0, 10)
  await call(owner, 'PUT', `/v1/day-feedback/${date}`, { mood: 4, rating: 7 })
  const activity = (
    await call(owner, 'POST', '/v1/activities', {
      kind: 'walk',
      started_at: day(1).toISOString(),
      ended_at: new Date(day(1).getTime() + 1800_000).toISOString(),
    })
  ).json()
  const intention = (
    await call(owner, 'POST', '/v1/intentions', {
      kind: 'focus',
      started_at: day(1).toISOString(),
      ended_at: new Date(day(1).getTime() + 1800_000).toISOString(),
    })
  ).json()
  await call(owner, 'POST', '/v1/measurements', {
    samples: [{ type: 'heart_rate', timestamp: day(1).toISOString(), value: 60 }],
  })
  const insight = (await call(owner, 'GET', '/v1/insights')).json().data[0]
  t.ok(insight, 'a journaling streak insight exists for the owner')
  const reflection = (await call(owner, 'POST', `/v1/insights/${insight.id}/reflections`, { text: 'noted' })).json()
  const share = (
    await call(owner, 'POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin', 'measurement'] })
  ).json()
  await call(viewer, 'POST', `/v1/shared/invites/${share.id}/accept`)
  const [group] = (
    await call(owner, 'POST', `/v1/user/${owner.user.id}/group/invite`, { email: admin.user.email })
  ).json()
  // A webhook subscription (a public address literal: no DNS needed) and one message of it.
  const webhook = (
    await call(owner, 'POST', '/v1/webhooks', {
      url: 'https://[2606:4700:4700::1111]/hook',
      event_types: ['checkin.created'],
    })
  ).json()
  const webhookMessage = (await call(owner, 'POST', `/v1/webhooks/${webhook.id}/test`)).json()
  const ownSessions = (await call(owner, 'GET', '/v1/users/me/sessions')).json().data
  const sessionId = ownSessions[0].id
  // A passkey row as a registration stores it (the ceremony itself is tested in test/mfa/).
  const passkey = await createMfaRepository(app.db).addPasskey({
    userId: owner.user.id,
    credentialId: 'bola-test-credential',
    publicKey: 'AAAA',
    deviceType: 'singleDevice',
    backedUp: false,
    name: 'Owner key',
  })

  const ids: Record<string, string> = {
    owner_id: owner.user.id,
    user_id: owner.user.id,
    member_id: owner.user.id,
    group_id: group.id,
    date,
    reflection_id: reflection.id,
    message_id: webhookMessage.message_id,
  }
  const idFor = (path: string): string | undefined => {
    if (path.includes('/checkins/')) return checkins[0].id
    if (path.includes('/activities/')) return activity.id
    if (path.includes('/intentions/')) return intention.id
    if (path.includes('/insights/')) return insight.id
    if (path.startsWith('/v1/sharing/') || path.startsWith('/v1/shared/{id}') || path.startsWith('/v1/shared/invites/'))
      return share.id
    if (path.startsWith('/v1/users/me/sessions/')) return sessionId
    if (path.startsWith('/v1/users/me/passkeys/')) return passkey?.id
    if (path.startsWith('/v1/webhooks/')) return webhook.id
  }

  // Expected status class per actor for the owner's objects. Non-owners get exactly the 404 of a
  // missing id; the user_id paths answer 403; a viewer reads /shared/{owner_id}/… within its scopes.
  type Actor = 'owner' | 'stranger' | 'viewer' | 'admin'
  function expected(path: string, method: string, actor: Actor): number[] {
    if (actor === 'owner') return [200, 201, 204, 400, 404, 409]
    if (path.startsWith('/v1/user/{user_id}')) return [403]
    if (path.startsWith('/v1/shared/{owner_id}')) {
      if (actor !== 'viewer') return [404]
      // The feed (`sync`) is readable when the share covers any of its types (checkin here).
      const scoped = /\/(checkins|measurements|sleep|sync)/.test(path)
      return scoped ? [200] : [403]
    }
    // A calendar day is a key within the caller's own data: the call reaches the caller's entry, never
    // the owner's (checked below: the owner's entry is unchanged).
    if (path === '/v1/day-feedback/{date}') return [200, 201, 404]
    if (actor === 'viewer' && path.startsWith('/v1/shared/invites/{id}')) return [404] // already accepted
    return [404]
  }

  const spec = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  const minimalBody: Record<string, object> = {
    '/v1/checkins/{id}': { mood: 2 },
    '/v1/activities/{id}': { notes: 'changed' },
    '/v1/activities/{id}/end': {},
    '/v1/intentions/{id}': { notes: 'changed' },
    '/v1/intentions/{id}/end': {},
    '/v1/day-feedback/{date}': { mood: 1 },
    '/v1/sharing/{id}': { scopes: ['insight'] },
    '/v1/insights/{id}/feedback': { helpful: false },
    '/v1/insights/{id}/reflections': { text: 'mine now' },
    '/v1/insights/{id}/reflections/{reflection_id}': { text: 'changed' },
    '/v1/user/{user_id}/group/{group_id}/invite': { email: stranger.user.email },
    '/v1/user/{user_id}/group/invite': { email: stranger.user.email },
    '/v1/users/me/passkeys/{id}': { name: 'mine now' },
    '/v1/webhooks/{id}': { status: 'disabled' },
  }
  const from = day(7).toISOString()
  const to = new Date().toISOString()
  const query: Record<string, string> = {
    measurements: `?type=heart_rate&from=${from}&to=${to}`,
    'measurements/aggregate': `?type=heart_rate&bucket=1h&from=${from}&to=${to}`,
    'statistics/daily': `?from=${from.slice(0, 10)}&to=${to.slice(0, 10)}`,
    'statistics/summary': `?period=week&date=${to.slice(0, 10)}`,
    sleep: `?from=${from.slice(0, 10)}&to=${to.slice(0, 10)}`,
    'sleep/daily': `?from=${from.slice(0, 10)}&to=${to.slice(0, 10)}`,
  }
  const queryFor = (path: string) => query[Object.keys(query).find((k) => path.endsWith(`/${k}`)) ?? ''] ?? ''
  let cells = 0
  // Writes and deletes by the others first; then the owner's objects must be unchanged.
  for (const actor of ['stranger', 'viewer', 'admin'] as Actor[]) {
    const who = actor === 'stranger' ? stranger : actor === 'viewer' ? viewer : admin
    for (const [path, item] of Object.entries<Record<string, unknown>>(spec.paths)) {
      if (
        !path.includes('{') ||
        path.startsWith('/v1/admin') ||
        path.includes('/firmware') ||
        path.startsWith('/v1/group/')
      )
        continue
      if (path === '/v1/shared/{id}' && actor === 'viewer') continue // would end the viewer's own share mid-matrix
      for (const method of Object.keys(item)) {
        const url = path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? idFor(path) ?? 'x') + queryFor(path)
        const res = await call(
          who,
          method.toUpperCase(),
          url,
          method === 'get' || method === 'delete' ? undefined : (minimalBody[path] ?? {}),
        )
        cells++
        const want = expected(path, method, actor)
        if (!want.includes(res.statusCode))
          t.fail(
            `${actor} ${method.toUpperCase()} ${path} → ${res.statusCode} (want ${want.join('/')}) ${res.body.slice(0, 160)}`,
          )
        else if (res.statusCode >= 400) t.equal(typeof res.json().error, 'string')
      }
    }
  }
  t.comment(`BOLA matrix: ${cells} calls by stranger, viewer and admin`)
  // A floor, so a spec filter above that matches nothing (or a renamed path) fails instead of passing
  // on zero cells: 140 on 2026-12-01 (47 operations with an id in the path, by three actors, less one).
  t.ok(cells >= 140, `the matrix checked ${cells} cells, at least 140 expected`)

  // Nothing of the owner's changed.
  t.same((await call(owner, 'GET', `/v1/checkins/${checkins[0].id}`)).json(), checkins[0])
  t.equal((await call(owner, 'GET', `/v1/activities/${activity.id}`)).json().notes, activity.notes)
  t.equal((await call(owner, 'GET', `/v1/day-feedback/${date}`)).json().mood, 4)
  t.same((await call(owner, 'GET', `/v1/sharing/${share.id}`)).json().scopes, ['checkin', 'measurement'])
  t.same(
    (await call(owner, 'GET', `/v1/insights/${insight.id}/reflections`))
      .json()
      .data.map((r: { text: string }) => r.text),
    ['noted'],
  )
  t.equal(
    (await call(owner, 'GET', '/v1/users/me/sessions')).json().data.length,
    ownSessions.length,
    'no session of the owner ended',
  )
  t.same(
    (await call(owner, 'GET', '/v1/users/me/passkeys')).json().data.map((p: { name: string }) => p.name),
    ['Owner key'],
    'the owner’s passkey is neither renamed nor deleted',
  )
  t.match((await call(owner, 'GET', `/v1/webhooks/${webhook.id}`)).json(), { status: 'active', url: webhook.url })
  const groups = (await call(owner, 'GET', `/v1/user/${owner.user.id}/group`)).json()
  t.equal(groups[0].pending_invites.length, 1, 'nobody else invited into the owner’s group')
})
