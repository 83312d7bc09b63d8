import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { createGroupRepository } from '../../routes/sharing/group-repository.ts'
import { hashInviteCode } from '../../routes/sharing/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, lastMail, userWithToken } from '../helpers/fixtures.ts'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'

// Issue 21 (Citus): peer-group invites are keyed (group_id, id); the e-mailed code names its invite in
// peer_group_invite_codes (by the code's hash), read first when the link is used. No foreign key joins the two:
// each path that ends an invite deletes its code row in the same transaction, and these tests prove each one.

const codes = (db: DbOrTx) =>
  queryRows<{ code_hash: string; group_id: string; invite_id: string }>(
    db,
    sql`select code_hash, group_id, invite_id from peer_group_invite_codes order by created_at, code_hash`,
  )
const invites = (db: DbOrTx) =>
  queryRows<{ id: string; group_id: string; invitee_id: string; code_hash: string }>(
    db,
    sql`select id, group_id, invitee_id, code_hash from peer_group_invites order by created_at, id`,
  )
/** Every code row names an invite with that code, and every invite has its code row. */
async function consistent(t: Test, db: DbOrTx, message: string) {
  const [c, i] = [await codes(db), await invites(db)]
  t.same(
    c.map((r) => `${r.group_id}/${r.invite_id}/${r.code_hash}`).sort(),
    i.map((r) => `${r.group_id}/${r.id}/${r.code_hash}`).sort(),
    message,
  )
}

t.test(
  'group invite codes: written with the invite, gone when it is accepted, replaced or its group dies',
  async (t) => {
    const app = await buildTestApp(t)
    const [ann, bob, cid, dan, eve] = [
      await userWithToken(app),
      await userWithToken(app),
      await userWithToken(app),
      await userWithToken(app),
      await userWithToken(app),
    ]
    async function invite(from: UserWithToken, to: UserWithToken, groupId?: string) {
      const url = groupId ? `/v1/user/${from.user.id}/group/${groupId}/invite` : `/v1/user/${from.user.id}/group/invite`
      const res = await from.call('POST', url, { email: to.user.email })
      t.equal(res.status, 200, `${from.user.email} invites ${to.user.email}`)
      const mail = await lastMail(app, to.user.email, 'group_invite')
      const link = mail?.text.match(/\/v1\/group\/([0-9a-f-]+)\/invite\/([A-Za-z0-9_-]+)\/accept/) as RegExpMatchArray
      return { groupId: link[1], code: link[2], link: link[0] }
    }

    const toBob = await invite(ann, bob)
    const [stored] = await invites(app.db)
    t.same(
      await codes(app.db),
      [{ code_hash: hashInviteCode(toBob.code), group_id: toBob.groupId, invite_id: stored.id }],
      'the code row names the invite by (group_id, id), under the hash of the code',
    )
    t.equal(stored.code_hash, hashInviteCode(toBob.code), 'the invite keeps the hash only')

    // Another group's path with this code: the code row names bob's group, so it finds nothing.
    const toCid = await invite(ann, cid)
    t.not(toCid.groupId, toBob.groupId, 'a second group')
    const crossed = `/v1/group/${toCid.groupId}/invite/${toBob.code}/accept`
    t.equal((await app.inject({ method: 'GET', url: crossed })).statusCode, 404, "a code on another group's link: 404")
    t.equal((await app.inject({ method: 'POST', url: crossed })).statusCode, 404, 'and it joins nothing')
    t.equal((await codes(app.db)).length, 2, 'both codes still there')

    const accepted = await app.inject({ method: 'POST', url: toBob.link })
    t.equal(accepted.statusCode, 303, 'bob accepts by the link')
    t.equal((await app.inject({ method: 'POST', url: toBob.link })).statusCode, 404, 'the code works once')
    t.notOk(
      (await codes(app.db)).some((c) => c.code_hash === hashInviteCode(toBob.code)),
      "bob's code row went with his invite",
    )
    await consistent(t, app.db, 'codes and invites match after a link acceptance')

    await invite(bob, dan, toBob.groupId)
    const byApi = await dan.call('POST', `/v1/user/${dan.user.id}/group/${toBob.groupId}/accept`)
    t.equal(byApi.status, 200, 'dan accepts through the API')
    t.equal(byApi.body[0].members.length, 3)
    await consistent(t, app.db, "dan's code row went with his invite (accepted by the API)")

    // An expired invite is replaced by a new one to the same person; the old code row goes with it.
    const old = await invite(ann, eve, toBob.groupId)
    await app.db.execute(sql`update peer_group_invites set expires_at = now() - interval '1 day'
                           where invitee_id = ${eve.user.id}`)
    t.equal((await app.inject({ method: 'POST', url: old.link })).statusCode, 404, 'an expired code joins nothing')
    const fresh = await invite(ann, eve, toBob.groupId)
    t.not(fresh.code, old.code)
    t.notOk(
      (await codes(app.db)).some((c) => c.code_hash === hashInviteCode(old.code)),
      "the expired invite's code row is gone",
    )
    await consistent(t, app.db, 'one code row per invite after the replacement')
    t.equal((await app.inject({ method: 'POST', url: old.link })).statusCode, 404, 'the old link still finds nothing')
    t.equal((await app.inject({ method: 'POST', url: fresh.link })).statusCode, 303, 'the new one works')
    await consistent(t, app.db, 'and is spent')

    // Group deletion: ann leaves the group whose only other person is cid, still invited; the group dies.
    t.equal((await codes(app.db)).length, 1, "cid's invite is the one left")
    const left = await ann.call('DELETE', `/v1/user/${ann.user.id}/group/${toCid.groupId}/member/${ann.user.id}`)
    t.equal(left.status, 200)
    t.same(await codes(app.db), [], "the group died, and its invite's code row with it")
    await consistent(t, app.db, 'no invite left either')
    t.equal((await app.inject({ method: 'POST', url: toCid.link })).statusCode, 404, "cid's link finds nothing")
    t.same((await cid.call('GET', `/v1/user/${cid.user.id}/group`)).body, [])
  },
)

t.test('cross-user: a code opens only its own invite, and another user cannot accept by the API', async (t) => {
  const app = await buildTestApp(t)
  const [ann, bob, mallory] = [await userWithToken(app), await userWithToken(app), await userWithToken(app)]
  const res = await ann.call('POST', `/v1/user/${ann.user.id}/group/invite`, { email: bob.user.email })
  const groupId = res.body[0].id as string
  const stranger = await mallory.call('POST', `/v1/user/${mallory.user.id}/group/${groupId}/accept`)
  const missing = await mallory.call('POST', `/v1/user/${mallory.user.id}/group/${randomUUID()}/accept`)
  t.equal(stranger.status, 404)
  t.same(stranger.body, missing.body, "accepting someone else's invite answers the 404 of a missing one")
  const guessed = await app.inject({ method: 'POST', url: `/v1/group/${groupId}/invite/${'A'.repeat(43)}/accept` })
  t.equal(guessed.statusCode, 404, 'a made-up code finds nothing')
  t.equal((await codes(app.db)).length, 1, "bob's invite is untouched")
  await consistent(t, app.db, 'and its code row too')
})

t.test(
  "an invite racing the invitee's account deletion waits for it, then finds no account (as the foreign key did)",
  { skip: !process.env.DATABASE_URL && 'PostgreSQL only: PGlite runs one transaction at a time' },
  async (t) => {
    const app = await buildTestApp(t)
    const [ann, bob] = [await userWithToken(app), await userWithToken(app)]
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let reached = () => {}
    const inside = new Promise<void>((resolve) => {
      reached = resolve
    })
    // Bob's deletion stops inside its transaction, its user row deleted and locked, until released.
    const deletion = createAccountDeletionService(app).deleteAccount(bob.user.id, async () => {
      reached()
      await held
    })
    await inside
    const invite = ann.call('POST', `/v1/user/${ann.user.id}/group/invite`, { email: bob.user.email })
    let settled = false
    invite.then(() => {
      settled = true
    })
    // Until the invite's transaction waits for a lock (or, without the lock, answers at once).
    for (;;) {
      const [waiting] = await queryRows<{ n: number }>(
        app.db,
        sql`select count(*)::int as n from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'`,
      )
      if (waiting.n > 0 || settled) break
      await sleep(20)
    }
    t.notOk(settled, 'the invite waits for the deletion')
    release()
    t.ok(await deletion)
    const res = await invite
    t.equal(res.status, 400)
    t.same(res.body, { error: 'email_not_found', message: 'No account has this e-mail address.' })
    t.same(await invites(app.db), [], 'no invite to the deleted account')
    t.same(await codes(app.db), [], 'nor a code row')
    t.same((await ann.call('GET', `/v1/user/${ann.user.id}/group`)).body, [], 'nor a group of one made for it')
  },
)

t.test(
  'the migration fills peer_group_invite_codes: invites sent before the upgrade are accepted by code',
  async (t) => {
    const before = await databaseMigratedUpTo('_peer_group_keys')
    t.teardown(() => before.close())
    const db = before.db
    const [inviter, invitee, other] = [randomUUID(), randomUUID(), randomUUID()]
    for (const id of [inviter, invitee, other]) {
      await db.execute(sql`
      insert into users (id, email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
      values (${id}, ${`${id}@example.com`}, 'x', 'A', 'B', now(), now())`)
    }
    const [group] = await queryRows<{ id: string }>(
      db,
      sql`insert into peer_groups (created_by) values (${inviter}) returning id`,
    )
    await db.execute(sql`insert into peer_group_members (group_id, user_id) values (${group.id}, ${inviter})`)
    const [live] = await queryRows<{ id: string }>(
      db,
      sql`insert into peer_group_invites (group_id, invitee_id, created_by, code_hash, expires_at)
        values (${group.id}, ${invitee}, ${inviter}, ${hashInviteCode('code-before-upgrade')}, now() + interval '7 days')
        returning id`,
    )
    const [expired] = await queryRows<{ id: string }>(
      db,
      sql`insert into peer_group_invites (group_id, invitee_id, created_by, code_hash, expires_at)
        values (${group.id}, ${other}, ${inviter}, ${hashInviteCode('expired-code')}, now() - interval '1 day')
        returning id`,
    )

    await before.migrateRest()

    t.same(
      (await codes(db)).sort((a, b) => a.invite_id.localeCompare(b.invite_id)),
      [
        { code_hash: hashInviteCode('code-before-upgrade'), group_id: group.id, invite_id: live.id },
        { code_hash: hashInviteCode('expired-code'), group_id: group.id, invite_id: expired.id },
      ].sort((a, b) => a.invite_id.localeCompare(b.invite_id)),
      'each invite has its code row, expired ones too',
    )
    const pk = await queryRows<{ column_name: string }>(
      db,
      sql`select k.column_name from information_schema.table_constraints c
          join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
         where c.table_name = 'peer_group_invites' and c.constraint_type = 'PRIMARY KEY' order by k.ordinal_position`,
    )
    t.same(
      pk.map((r) => r.column_name),
      ['group_id', 'id'],
      'invites are keyed (group_id, id)',
    )
    const groups = createGroupRepository(db)
    t.match(
      await groups.findInviteByCode(group.id, hashInviteCode('code-before-upgrade')),
      { inviteeEmail: `${invitee}@example.com`, memberCount: 1 },
      'the link page finds the old invite by its code',
    )
    t.equal(await groups.accept(group.id, { codeHash: hashInviteCode('expired-code') }), null, 'not an expired one')
    t.equal(
      await groups.accept(group.id, { codeHash: hashInviteCode('code-before-upgrade') }),
      invitee,
      'the old code is accepted',
    )
    t.ok(await groups.isMember(group.id, invitee), 'the invitee is a member')
    t.same(
      (await codes(db)).map((c) => c.invite_id),
      [expired.id],
      'and its code row is spent',
    )
  },
)
