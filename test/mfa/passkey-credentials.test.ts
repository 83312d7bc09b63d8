import { sql } from 'drizzle-orm'
import t from 'tap'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { createMfaRepository } from '../../routes/mfa/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'

// Issue 21 (Citus-ready): passkeys are keyed by (user_id, id); a credential id names its one account in
// passkey_credentials, which a passwordless login reads first. The ceremonies are tested in
// passkey-browser.test.ts; here the lookup table's rules.

const passkey = (userId: string, credentialId: string, name = 'Key') => ({
  userId,
  credentialId,
  publicKey: 'AAAA',
  deviceType: 'singleDevice' as const,
  backedUp: false,
  name,
})

const lookup = (db: DbOrTx) =>
  queryRows<{ credential_id: string; user_id: string }>(
    db,
    sql`select credential_id, user_id from passkey_credentials order by credential_id`,
  )

t.test('a credential id belongs to one account; the lookup row comes and goes with the passkey', async (t) => {
  const app = await buildTestApp(t)
  const repo = createMfaRepository(app.db)
  const [a, b] = [await userWithToken(app), await userWithToken(app)]

  const mine = await repo.addPasskey(passkey(a.user.id, 'cred-x', 'A key'))
  t.ok(mine, "A's passkey is stored")
  t.same(await lookup(app.db), [{ credential_id: 'cred-x', user_id: a.user.id }], 'with its lookup row')
  t.equal(await repo.addPasskey(passkey(b.user.id, 'cred-x')), null, "B cannot register A's credential id")
  t.equal(await repo.addPasskey(passkey(a.user.id, 'cred-x')), null, 'nor A twice')
  t.same(await repo.passkeysOf(b.user.id), [], 'B is left without a passkey row (rolled back)')
  t.equal((await repo.passkeysOf(a.user.id)).length, 1, 'A has one')

  // Passwordless login: the account from the lookup, the passkey by that account.
  t.equal((await repo.passkeyByCredentialId('cred-x', null))?.id, mine?.id, 'found by credential alone')
  t.equal((await repo.passkeyByCredentialId('cred-x', a.user.id))?.id, mine?.id, 'and as A’s second factor')
  t.equal(await repo.passkeyByCredentialId('cred-x', b.user.id), null, 'never as B’s')
  t.equal(await repo.passkeyByCredentialId('cred-unknown', null), null, 'an unknown credential: none')

  // Concurrent registrations of one credential id by two accounts: one wins.
  const raced = await Promise.all([
    repo.addPasskey(passkey(a.user.id, 'cred-race')),
    repo.addPasskey(passkey(b.user.id, 'cred-race')),
  ])
  t.equal(raced.filter(Boolean).length, 1, 'one of two concurrent registrations of one credential wins')
  const [raceOwner] = await queryRows<{ user_id: string }>(
    app.db,
    sql`select user_id from passkey_credentials where credential_id = 'cred-race'`,
  )
  const [rows] = await queryRows<{ n: number }>(
    app.db,
    sql`select count(*)::int as n from passkeys where credential_id = 'cred-race' and user_id = ${raceOwner?.user_id}`,
  )
  t.equal(rows?.n, 1, 'and the lookup names the account holding it')

  // Removing the passkey removes the lookup row: B may register that credential afterwards.
  await app.db.transaction(async (tx) => {
    t.ok(await repo.deletePasskey(a.user.id, mine?.id as string, tx), 'A removes the passkey')
  })
  t.notOk(
    (await lookup(app.db)).some((r) => r.credential_id === 'cred-x'),
    'its lookup row is gone in the same transaction',
  )
  t.ok(await repo.addPasskey(passkey(b.user.id, 'cred-x')), 'B can register the freed credential id')
  t.equal(await repo.deletePasskey(a.user.id, mine?.id as string, app.db), null, 'a removed passkey is not found')
})

t.test('an admin reset and an account deletion remove the lookup rows', async (t) => {
  const app = await buildTestApp(t)
  const repo = createMfaRepository(app.db)
  const [a, b, admin] = [
    await userWithToken(app),
    await userWithToken(app),
    await userWithToken(app, { role: 'admin' }),
  ]
  await repo.addPasskey(passkey(a.user.id, 'cred-a1'))
  await repo.addPasskey(passkey(a.user.id, 'cred-a2'))
  await repo.addPasskey(passkey(b.user.id, 'cred-b1'))
  // A ceremony begun and a login waiting for its second factor, each: rows in global tables without a foreign
  // key to users (docs/scaling.md), which the reset and the deletion must remove themselves.
  for (const u of [a, b]) {
    await repo.saveChallenge(`challenge-${u.user.id}`, 'register', u.user.id, 300)
    await repo.createLoginToken({
      userId: u.user.id,
      tokenHash: `hash-${u.user.id}`,
      clientId: null,
      admin: false,
      ttlS: 300,
    })
  }
  const pending = (userId: string) =>
    queryRows<{ challenges: number; logins: number }>(
      app.db,
      sql`select (select count(*) from webauthn_challenges where user_id = ${userId})::int as challenges,
                 (select count(*) from mfa_login_token_keys where user_id = ${userId})::int as logins`,
    )

  const reset = await admin.call('POST', `/v1/admin/users/${a.user.id}/mfa/reset`)
  t.equal(reset.status, 200)
  t.match(reset.body, { passkeys_removed: 2 }, 'both of A’s passkeys go')
  t.same(await lookup(app.db), [{ credential_id: 'cred-b1', user_id: b.user.id }], 'and their lookup rows; B’s stays')
  t.same(await pending(a.user.id), [{ challenges: 0, logins: 0 }], 'A’s pending ceremony and login go with the reset')
  t.same(await pending(b.user.id), [{ challenges: 1, logins: 1 }], 'B’s stay')

  await repo.addPasskey(passkey(a.user.id, 'cred-a3'))
  await repo.saveChallenge(`challenge-again-${a.user.id}`, 'reauthenticate', a.user.id, 300)
  await repo.createLoginToken({ userId: a.user.id, tokenHash: 'hash-again', clientId: null, admin: false, ttlS: 300 })
  t.ok(await createAccountDeletionService(app).deleteAccount(a.user.id), 'A deletes the account')
  t.same(await lookup(app.db), [{ credential_id: 'cred-b1', user_id: b.user.id }], 'A’s lookup rows are gone')
  t.same(await pending(a.user.id), [{ challenges: 0, logins: 0 }], 'and A’s pending ceremony and login')
  t.same(await pending(b.user.id), [{ challenges: 1, logins: 1 }], 'B’s stay')
  t.equal(await repo.passkeyByCredentialId('cred-a3', null), null, 'A’s credential no longer logs anyone in')
})

t.test('the migration fills passkey_credentials from the passkeys of a populated database', async (t) => {
  const before = await databaseMigratedUpTo('_passkey_credentials')
  t.teardown(() => before.close())
  const db = before.db
  const users = await queryRows<{ id: string }>(
    db,
    sql`insert into users (email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
        values ('one@example.com', 'x', 'One', 'User', now(), now()), ('two@example.com', 'x', 'Two', 'User', now(), now())
        returning id`,
  )
  const [one, two] = users.map((u) => u.id)
  await db.execute(
    sql`insert into passkeys (user_id, credential_id, public_key, device_type, backed_up, name)
        values (${one}, 'c-1', 'AAAA', 'singleDevice', false, 'k1'), (${one}, 'c-2', 'AAAA', 'multiDevice', true, 'k2'),
               (${two}, 'c-3', 'AAAA', 'singleDevice', false, 'k3')`,
  )
  await before.migrateRest()
  t.same(
    await lookup(db),
    [
      { credential_id: 'c-1', user_id: one },
      { credential_id: 'c-2', user_id: one },
      { credential_id: 'c-3', user_id: two },
    ],
    'every existing passkey names its account',
  )
  const pk = await queryRows<{ column_name: string }>(
    db,
    sql`select k.column_name from information_schema.table_constraints c
          join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
         where c.table_name = 'passkeys' and c.constraint_type = 'PRIMARY KEY' order by k.ordinal_position`,
  )
  t.same(
    pk.map((r) => r.column_name),
    ['user_id', 'id'],
    'passkeys are keyed by (user_id, id)',
  )
})
