import { eq } from 'drizzle-orm'
import t from 'tap'
import { shares } from '../../db/schema/index.ts'
import { createShareAccess } from '../../routes/sharing/access.ts'
import { buildTestApp } from '../helpers/app.ts'
import { lastMail, userWithToken } from '../helpers/fixtures.ts'

t.test('sharing: invite → accept → read scopes → change → revoke', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app)
  const viewer = await userWithToken(app)
  const stranger = await userWithToken(app)
  const req = (
    who: { headers: Record<string, string> },
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
  ) => app.inject({ method, url, headers: who.headers, payload })
  const inviteCode = async (email: string) => {
    const mail = await lastMail(app, email, 'share_invite')
    return mail?.text.match(/accept\?code=([A-Za-z0-9_-]+)/)?.[1] as string
  }
  const ownerFor = createShareAccess(app.db)
  /** The status a viewer's read of the owner's data within a scope gets: 200, 403 or 404. */
  const readAs = (
    who: { user: { id: string } },
    ownerId: string,
    scope: 'measurement' | 'checkin' | 'insight' | 'activity',
  ) =>
    ownerFor({ user: { sub: who.user.id, sid: 'x', role: 'user' } } as never, ownerId, scope).then(
      () => 200,
      (err: { statusCode: number }) => err.statusCode,
    )

  let shareId = ''
  t.test('the invite names the viewer and is e-mailed with an accept link', async (t) => {
    const res = await req(owner, 'POST', '/v1/sharing/invites', {
      email: viewer.user.email.toUpperCase(),
      scopes: ['measurement', 'statistics'],
    })
    t.equal(res.statusCode, 201)
    const body = res.json()
    shareId = body.id
    t.match(body, {
      status: 'pending',
      scopes: ['measurement', 'statistics'],
      viewer: { id: viewer.user.id, email: viewer.user.email, first_name: 'Test', last_name: 'User' },
      accepted_at: null,
    })
    t.ok(new Date(body.expires_at).getTime() > Date.now() + 13 * 86400_000, 'expires in 14 days')
    t.match(await inviteCode(viewer.user.email), /^[A-Za-z0-9_-]{43}$/)
    const [row] = await app.db.select().from(shares).where(eq(shares.id, shareId))
    t.not(row.inviteCodeHash, await inviteCode(viewer.user.email), 'only the hash is stored')
  })

  t.test('invites are refused for unknown addresses, twice, oneself, and unknown scopes', async (t) => {
    const unknown = await req(owner, 'POST', '/v1/sharing/invites', {
      email: 'ghost@example.com',
      scopes: ['measurement'],
    })
    t.same(unknown.json(), { error: 'email_not_found', message: 'No account has this e-mail address.' })
    const twice = await req(owner, 'POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] })
    t.equal(twice.statusCode, 400)
    t.equal(twice.json().error, 'already_shared')
    const self = await req(owner, 'POST', '/v1/sharing/invites', { email: owner.user.email, scopes: ['checkin'] })
    t.equal(self.json().error, 'cannot_share_with_self')
    const badScope = await req(owner, 'POST', '/v1/sharing/invites', {
      email: stranger.user.email,
      scopes: ['passwords'],
    })
    t.equal(badScope.statusCode, 400)
    t.equal(badScope.json().error, 'validation_failed')
    const none = await req(owner, 'POST', '/v1/sharing/invites', { email: stranger.user.email, scopes: [] })
    t.equal(none.json().error, 'validation_failed')
  })

  t.test('before acceptance nothing is readable', async (t) => {
    t.equal(await readAs(viewer, owner.user.id, 'measurement'), 404)
  })

  t.test('the viewer sees the invite; a stranger cannot accept or decline it', async (t) => {
    const invites = await req(viewer, 'GET', '/v1/shared/invites')
    t.same(
      invites.json().data.map((s: { id: string }) => s.id),
      [shareId],
    )
    t.match(invites.json().data[0], { owner: { id: owner.user.id, email: owner.user.email }, status: 'pending' })
    t.same((await req(stranger, 'GET', '/v1/shared/invites')).json(), { data: [], next_cursor: null })
    const steal = await req(stranger, 'POST', `/v1/shared/invites/${shareId}/accept`)
    t.equal(steal.statusCode, 404)
    const decline = await req(stranger, 'POST', `/v1/shared/invites/${shareId}/decline`)
    t.equal(decline.statusCode, 404)
    const ownerAccepts = await req(owner, 'POST', `/v1/shared/invites/${shareId}/accept`)
    t.equal(ownerAccepts.statusCode, 404, 'the owner cannot accept on the viewer’s behalf')
  })

  t.test(
    'the e-mailed link’s page posts the acceptance, which redirects to the app; the code works once',
    async (t) => {
      const code = await inviteCode(viewer.user.email)
      const page = await app.inject({ method: 'GET', url: `/v1/shared/invites/accept?code=${code}` })
      t.equal(page.statusCode, 200)
      t.match(page.headers['content-type'], /^text\/html/)
      const res = await app.inject({
        method: 'POST',
        url: '/v1/shared/invites/accept',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `code=${encodeURIComponent(code)}`,
      })
      t.equal(res.statusCode, 303)
      t.equal(res.headers.location, `nowatch://app/shared/${shareId}`)
      const again = await app.inject({ method: 'POST', url: '/v1/shared/invites/accept', payload: { code } })
      t.equal(again.statusCode, 404)
      t.equal(again.json().error, 'not_found')
      const bogus = await app.inject({ method: 'GET', url: '/v1/shared/invites/accept?code=nope' })
      t.equal(bogus.statusCode, 404)
      t.equal(bogus.json().error, 'not_found')
    },
  )

  t.test('the viewer lists the share; scopes are enforced', async (t) => {
    const shared = await req(viewer, 'GET', '/v1/shared')
    t.equal(shared.statusCode, 200)
    t.match(shared.json().data, [
      { id: shareId, status: 'active', scopes: ['measurement', 'statistics'], owner: { id: owner.user.id } },
    ])
    t.equal(await readAs(viewer, owner.user.id, 'measurement'), 200)
    t.equal(await readAs(viewer, owner.user.id, 'checkin'), 403)
    t.equal(await readAs(stranger, owner.user.id, 'measurement'), 404)
    t.equal(await readAs(owner, viewer.user.id, 'measurement'), 404, 'sharing is one-way')
  })

  t.test('the owner changes scopes; nobody else can touch the share', async (t) => {
    const patch = await req(owner, 'PATCH', `/v1/sharing/${shareId}`, { scopes: ['checkin'] })
    t.equal(patch.statusCode, 200)
    t.same(patch.json().scopes, ['checkin'])
    t.equal(await readAs(viewer, owner.user.id, 'measurement'), 403)
    t.equal(await readAs(viewer, owner.user.id, 'checkin'), 200)
    for (const who of [viewer, stranger]) {
      t.equal((await req(who, 'PATCH', `/v1/sharing/${shareId}`, { scopes: ['measurement'] })).statusCode, 404)
      t.equal((await req(who, 'GET', `/v1/sharing/${shareId}`)).statusCode, 404)
      t.equal((await req(who, 'DELETE', `/v1/sharing/${shareId}`)).statusCode, 404)
    }
    t.equal((await req(stranger, 'DELETE', `/v1/shared/${shareId}`)).statusCode, 404)
    t.same((await req(owner, 'GET', `/v1/sharing/${shareId}`)).json().scopes, ['checkin'])
  })

  t.test('revoking ends access at once', async (t) => {
    const res = await req(owner, 'DELETE', `/v1/sharing/${shareId}`)
    t.same(res.json(), { status: 'success' })
    t.equal(await readAs(viewer, owner.user.id, 'checkin'), 404)
    t.same((await req(viewer, 'GET', '/v1/shared')).json(), { data: [], next_cursor: null })
    t.equal((await req(owner, 'DELETE', `/v1/sharing/${shareId}`)).statusCode, 404)
  })

  t.test('decline, stop viewing, cancel', async (t) => {
    const a = (
      await req(owner, 'POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['insight'] })
    ).json()
    t.same((await req(viewer, 'POST', `/v1/shared/invites/${a.id}/decline`)).json(), { status: 'success' })
    t.same((await req(owner, 'GET', '/v1/sharing')).json().data, [])
    const b = (
      await req(owner, 'POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['insight'] })
    ).json()
    const accepted = await req(viewer, 'POST', `/v1/shared/invites/${b.id}/accept`)
    t.match(accepted.json(), { id: b.id, status: 'active', owner: { id: owner.user.id }, expires_at: null })
    t.same((await req(viewer, 'DELETE', `/v1/shared/${b.id}`)).json(), { status: 'success' })
    t.equal(await readAs(viewer, owner.user.id, 'insight'), 404)
    const c = (
      await req(owner, 'POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['insight'] })
    ).json()
    t.same((await req(owner, 'DELETE', `/v1/sharing/${c.id}`)).json(), { status: 'success' }, 'cancel a pending invite')
    t.equal((await req(viewer, 'POST', `/v1/shared/invites/${c.id}/accept`)).statusCode, 404)
  })

  t.test('an expired invite cannot be accepted and can be sent again', async (t) => {
    const d = (
      await req(owner, 'POST', '/v1/sharing/invites', { email: stranger.user.email, scopes: ['activity'] })
    ).json()
    const code = await inviteCode(stranger.user.email)
    await app.db
      .update(shares)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(shares.id, d.id))
    t.equal((await app.inject({ method: 'GET', url: `/v1/shared/invites/accept?code=${code}` })).statusCode, 404)
    t.equal((await req(stranger, 'POST', `/v1/shared/invites/${d.id}/accept`)).statusCode, 404)
    t.same((await req(stranger, 'GET', '/v1/shared/invites')).json().data, [])
    const again = await req(owner, 'POST', '/v1/sharing/invites', { email: stranger.user.email, scopes: ['activity'] })
    t.equal(again.statusCode, 201)
  })

  t.test('lists paginate without gaps or repeats', async (t) => {
    const people = []
    for (let i = 0; i < 5; i++) people.push(await userWithToken(app))
    for (const p of people)
      await req(viewer, 'POST', '/v1/sharing/invites', { email: p.user.email, scopes: ['checkin'] })
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res = await req(viewer, 'GET', `/v1/sharing?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      const body = res.json()
      t.ok(body.data.length <= 2)
      seen.push(...body.data.map((s: { id: string }) => s.id))
      cursor = body.next_cursor
    } while (cursor)
    t.equal(seen.length, 5)
    t.equal(new Set(seen).size, 5)
  })
})
