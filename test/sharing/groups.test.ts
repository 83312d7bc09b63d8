import t from 'tap'
import { createShareAccess } from '../../routes/sharing/access.ts'
import { buildTestApp } from '../helpers/app.ts'
import { lastMail, userWithToken } from '../helpers/fixtures.ts'

t.test('peer groups: invite, accept by link or API, read, remove, die with the last member', async (t) => {
  const app = await buildTestApp(t)
  const [ann, bob, cid, dan] = [
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
  ]
  const req = (
    who: { headers: Record<string, string> },
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: object,
  ) => app.inject({ method, url, headers: who.headers, payload })
  const ownerFor = createShareAccess(app.db)
  const canRead = async (viewer: { user: { id: string } }, owner: { user: { id: string } }) =>
    ownerFor({ user: { sub: viewer.user.id, sid: 'x', role: 'user' } } as never, owner.user.id, 'insight').then(
      () => true,
      () => false,
    )

  const invite = await req(ann, 'POST', `/v1/user/${ann.user.id}/group/invite`, { email: bob.user.email })
  t.equal(invite.statusCode, 200)
  const [group] = invite.json()
  t.match(group, {
    members: [{ id: ann.user.id, email: ann.user.email, first_name: 'Test', last_name: 'User' }],
    pending_invites: [{ created_by: ann.user.id, email: bob.user.email }],
  })
  t.equal(invite.json().length, 1)

  t.test('errors of the reference', async (t) => {
    const unknown = await req(ann, 'POST', `/v1/user/${ann.user.id}/group/${group.id}/invite`, {
      email: 'ghost@example.com',
    })
    t.same(unknown.json(), { error: 'email_not_found', message: 'No account has this e-mail address.' })
    const self = await req(ann, 'POST', `/v1/user/${ann.user.id}/group/${group.id}/invite`, { email: ann.user.email })
    t.equal(self.json().error, 'already_member')
    const twice = await req(ann, 'POST', `/v1/user/${ann.user.id}/group/${group.id}/invite`, { email: bob.user.email })
    t.equal(twice.json().error, 'already_invited')
    const otherPath = await req(bob, 'GET', `/v1/user/${ann.user.id}/group`)
    t.equal(otherPath.statusCode, 403)
    t.equal(otherPath.json().error, 'forbidden')
    const notMember = await req(cid, 'POST', `/v1/user/${cid.user.id}/group/${group.id}/invite`, {
      email: dan.user.email,
    })
    t.equal(notMember.statusCode, 404, 'outsiders cannot invite into a group')
  })

  t.test('accept by the e-mailed link, then both read each other', async (t) => {
    t.notOk(await canRead(bob, ann))
    const mail = await lastMail(app, bob.user.email, 'group_invite')
    const link = mail?.text.match(/\/v1\/group\/[0-9a-f-]+\/invite\/[A-Za-z0-9_-]+\/accept/)?.[0] as string
    t.equal((await app.inject({ method: 'GET', url: link })).statusCode, 200, 'the link shows a page')
    t.notOk(await canRead(bob, ann), 'opening the link joins nothing')
    const res = await app.inject({ method: 'POST', url: link })
    t.equal(res.statusCode, 303)
    t.equal(res.headers.location, `nowatch://app/groups/${group.id}`)
    t.equal((await app.inject({ method: 'POST', url: link })).statusCode, 404, 'the code works once')
    t.equal((await app.inject({ method: 'GET', url: link })).statusCode, 404)
    const bobs = (await req(bob, 'GET', `/v1/user/${bob.user.id}/group`)).json()
    t.same(bobs[0].members.map((m: { id: string }) => m.id).sort(), [ann.user.id, bob.user.id].sort())
    t.same(bobs[0].pending_invites, [])
    t.ok(await canRead(bob, ann))
    t.ok(await canRead(ann, bob))
    t.notOk(await canRead(cid, ann))
  })

  t.test('accept through the API', async (t) => {
    await req(bob, 'POST', `/v1/user/${bob.user.id}/group/${group.id}/invite`, { email: cid.user.email })
    const steal = await req(dan, 'POST', `/v1/user/${dan.user.id}/group/${group.id}/accept`)
    t.equal(steal.statusCode, 404, 'only the invitee can accept')
    const ok = await req(cid, 'POST', `/v1/user/${cid.user.id}/group/${group.id}/accept`)
    t.equal(ok.statusCode, 200)
    t.equal(ok.json()[0].members.length, 3)
  })

  t.test('any member may remove a member; outsiders may not; the group dies with its last member', async (t) => {
    const outsider = await req(dan, 'DELETE', `/v1/user/${dan.user.id}/group/${group.id}/member/${bob.user.id}`)
    t.equal(outsider.statusCode, 404)
    const removed = await req(cid, 'DELETE', `/v1/user/${cid.user.id}/group/${group.id}/member/${bob.user.id}`)
    t.equal(removed.statusCode, 200)
    t.same(
      removed
        .json()[0]
        .members.map((m: { id: string }) => m.id)
        .sort(),
      [ann.user.id, cid.user.id].sort(),
    )
    t.notOk(await canRead(bob, ann), 'a removed member loses access')
    const gone = await req(ann, 'DELETE', `/v1/user/${ann.user.id}/group/${group.id}/member/${bob.user.id}`)
    t.equal(gone.statusCode, 404)
    const last = await req(ann, 'DELETE', `/v1/user/${ann.user.id}/group/${group.id}/member/${ann.user.id}`)
    t.same(last.json(), [], 'ann left')
    t.same((await req(cid, 'GET', `/v1/user/${cid.user.id}/group`)).json(), [], 'one member left: the group is deleted')
    t.notOk(await canRead(cid, ann))
  })
})
