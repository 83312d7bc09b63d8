import { sql } from 'drizzle-orm'
import t from 'tap'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { hashInviteCode } from '../../routes/sharing/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, lastMail, userWithToken } from '../helpers/fixtures.ts'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'

// Issue 21 (Citus-ready): shares are keyed by (owner_id, id); an e-mailed invite code names its share in
// share_invite_codes (read first when the link is opened), written with the invite and removed when it is
// accepted or the share goes; the viewer side has no foreign key, so account deletion removes it.

const codes = (db: DbOrTx) =>
  queryRows<{ code_hash: string; owner_id: string; share_id: string }>(
    db,
    sql`select code_hash, owner_id, share_id from share_invite_codes order by created_at, code_hash`,
  )
const sharesOf = (db: DbOrTx, userId: string) =>
  queryRows<{ id: string; status: string }>(
    db,
    sql`select id, status from shares where owner_id = ${userId} or viewer_id = ${userId} order by created_at`,
  )

t.test('invite codes: written with the invite, gone when accepted, cancelled, declined or replaced', async (t) => {
  const app = await buildTestApp(t)
  const [owner, v1, v2, v3, v4] = [
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app),
  ]
  async function invite(viewer: UserWithToken) {
    const res = await owner.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] })
    t.equal(res.status, 201, `invite ${viewer.user.email}`)
    const mail = await lastMail(app, viewer.user.email, 'share_invite')
    const code = mail?.text.match(/\/v1\/shared\/invites\/accept\?code=([A-Za-z0-9_-]+)/)?.[1] as string
    return { id: res.body.id as string, code }
  }

  const first = await invite(v1)
  t.same(
    await codes(app.db),
    [{ code_hash: hashInviteCode(first.code), owner_id: owner.user.id, share_id: first.id }],
    'the code names its share and owner',
  )
  const page = await app.inject({ method: 'GET', url: `/v1/shared/invites/accept?code=${first.code}` })
  t.equal(page.statusCode, 200, 'the link page finds the invite through the lookup')
  const accepted = await app.inject({
    method: 'POST',
    url: '/v1/shared/invites/accept',
    payload: { code: first.code },
  })
  t.equal(accepted.statusCode, 303, 'the code accepts it')
  t.match(accepted.headers.location, new RegExp(`/shared/${first.id}$`))
  t.same(await codes(app.db), [], 'and is gone: single use')
  const again = await app.inject({ method: 'POST', url: '/v1/shared/invites/accept', payload: { code: first.code } })
  t.equal(again.statusCode, 404, 'a used code finds nothing')
  t.same((await v1.call('GET', '/v1/shared')).body.data.length, 1, 'the viewer sees the share')

  const cancelled = await invite(v2)
  t.equal((await owner.call('DELETE', `/v1/sharing/${cancelled.id}`)).status, 200, 'the owner cancels an invite')
  const declined = await invite(v3)
  t.equal((await v3.call('POST', `/v1/shared/invites/${declined.id}/decline`)).status, 200, 'a viewer declines')
  t.same(await codes(app.db), [], 'their codes are gone')
  const dead = await app.inject({ method: 'POST', url: '/v1/shared/invites/accept', payload: { code: cancelled.code } })
  t.equal(dead.statusCode, 404, "a cancelled invite's code finds nothing")

  // An expired invite is replaced by a new one to the same viewer; the old code goes with it.
  const old = await invite(v4)
  await app.db.execute(sql`update shares set expires_at = now() - interval '1 day' where id = ${old.id}`)
  const fresh = await invite(v4)
  t.same(
    (await codes(app.db)).map((c) => c.share_id),
    [fresh.id],
    'only the new invite has a code',
  )
  const byId = await v4.call('POST', `/v1/shared/invites/${fresh.id}/accept`)
  t.equal(byId.status, 200, 'accepting by id (the invitee) works')
  t.match(
    byId.body,
    { id: fresh.id, status: 'active', owner: { email: owner.user.email } },
    'the share, read by its owner key',
  )
  t.same(await codes(app.db), [], "and spends the code too (the link can't accept it again)")
})

t.test('cross-user: nobody else accepts, declines or reads a share by its id', async (t) => {
  const app = await buildTestApp(t)
  const [owner, viewer, stranger] = [await userWithToken(app), await userWithToken(app), await userWithToken(app)]
  const share = (await owner.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['checkin'] }))
    .body
  const missing = await stranger.call('POST', `/v1/shared/invites/${crypto.randomUUID()}/accept`)
  t.equal(missing.status, 404)
  const theirs = await stranger.call('POST', `/v1/shared/invites/${share.id}/accept`)
  t.same(theirs, missing, "a stranger accepting the viewer's invite gets the 404 of a missing one")
  t.equal((await stranger.call('GET', `/v1/sharing/${share.id}`)).status, 404, 'nor reads it as an owner')
  t.equal((await viewer.call('GET', `/v1/sharing/${share.id}`)).status, 404, 'the viewer is not its owner')
  t.equal((await owner.call('GET', `/v1/sharing/${share.id}`)).status, 200, 'the owner reads it')
  t.equal((await sharesOf(app.db, owner.user.id))[0]?.status, 'pending', 'still pending')
})

t.test('account deletion removes the shares an account views and the codes of both sides', async (t) => {
  const app = await buildTestApp(t)
  const [a, b, c] = [await userWithToken(app), await userWithToken(app), await userWithToken(app)]
  const ab = (await a.call('POST', '/v1/sharing/invites', { email: b.user.email, scopes: ['checkin'] })).body
  await b.call('POST', `/v1/shared/invites/${ab.id}/accept`)
  await a.call('POST', '/v1/sharing/invites', { email: c.user.email, scopes: ['checkin'] })
  const cb = (await c.call('POST', '/v1/sharing/invites', { email: b.user.email, scopes: ['checkin'] })).body
  t.equal((await codes(app.db)).length, 2, 'two pending invites, two codes')

  const deletion = createAccountDeletionService(app)
  t.ok(await deletion.deleteAccount(b.user.id), 'B (a viewer of two shares) deletes the account')
  t.same(await sharesOf(app.db, b.user.id), [], 'no share names B any more')
  t.same(
    (await codes(app.db)).map((r) => r.owner_id),
    [a.user.id],
    "the code of C's invite to B went with it; A's invite to C stays",
  )
  t.ok(await deletion.deleteAccount(a.user.id), 'A (an owner) deletes the account')
  t.same(await codes(app.db), [], "A's pending invite code is gone")
  t.same(await sharesOf(app.db, c.user.id), [], 'and the share C was invited to')
  t.not(cb.id, undefined)
})

t.test('the migration fills share_invite_codes from the pending shares of a populated database', async (t) => {
  const before = await databaseMigratedUpTo('_share_keys')
  t.teardown(() => before.close())
  const db = before.db
  const ids = (
    await queryRows<{ id: string }>(
      db,
      sql`insert into users (email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
          values ('o@example.com', 'x', 'O', 'U', now(), now()), ('v1@example.com', 'x', 'V', 'U', now(), now()),
                 ('v2@example.com', 'x', 'V', 'U', now(), now())
          returning id`,
    )
  ).map((r) => r.id)
  const [o, v1, v2] = ids
  const [pending] = await queryRows<{ id: string }>(
    db,
    sql`insert into shares (owner_id, viewer_id, scopes, status, invite_code_hash, expires_at)
        values (${o}, ${v1}, '{checkin}', 'pending', 'hash-1', now() + interval '1 day') returning id`,
  )
  await db.execute(
    sql`insert into shares (owner_id, viewer_id, scopes, status, accepted_at) values (${o}, ${v2}, '{checkin}', 'active', now())`,
  )
  await before.migrateRest()
  t.same(
    await codes(db),
    [{ code_hash: 'hash-1', owner_id: o, share_id: pending?.id }],
    'the pending invite has its code row; the accepted share has none',
  )
  const pk = await queryRows<{ column_name: string }>(
    db,
    sql`select k.column_name from information_schema.table_constraints c
          join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
         where c.table_name = 'shares' and c.constraint_type = 'PRIMARY KEY' order by k.ordinal_position`,
  )
  t.same(
    pk.map((r) => r.column_name),
    ['owner_id', 'id'],
    'shares are keyed by (owner_id, id)',
  )
})
