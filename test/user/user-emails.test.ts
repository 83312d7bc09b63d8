import { sql } from 'drizzle-orm'
import t from 'tap'
import { type DbOrTx, queryRows } from '../../db/client.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { createUserRepository } from '../../routes/user/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { PASSWORD, bearer, codeFromMail, createUser, login, sharedClient, uniqueEmail } from '../helpers/fixtures.ts'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'

// Issue 21 (Citus-ready): users are keyed by id alone; an address names its one account in user_emails,
// which every lookup by address reads first. Normalisation is today's: trimmed and lower-cased.

const lookup = (db: DbOrTx, email: string) =>
  queryRows<{ email: string; user_id: string }>(db, sql`select email, user_id from user_emails where email = ${email}`)

t.test('register and look up through user_emails, ignoring case (and spaces in a lookup)', async (t) => {
  const app = await buildTestApp(t)
  const client = await sharedClient(app)
  const email = uniqueEmail('Mixed')
  const register = (address: string, first = 'Sponge') =>
    app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'x-auth-token': client },
      payload: {
        email: address,
        password: PASSWORD,
        first_name: first,
        last_name: 'Bob',
        toc_accepted_at: '2024-07-01T12:34:56Z',
        privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
      },
    })
  const first = await register(email.toUpperCase())
  t.equal(first.statusCode, 200, first.body)
  const rows = await lookup(app.db, email.toLowerCase())
  t.equal(rows.length, 1, 'the normalised address names the new account')
  const [user] = await queryRows<{ id: string; email: string }>(
    app.db,
    sql`select id, email from users where id = ${rows[0]?.user_id}`,
  )
  t.equal(user?.email, email.toLowerCase(), 'the account holds the same normalised address')

  const again = await register(email.toLowerCase(), 'Other')
  t.same(again.json(), first.json(), 'registering a taken address answers alike')
  const [count] = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from users`)
  t.equal(count?.n, 1, 'and makes no second account')
  const [names] = await queryRows<{ first_name: string }>(app.db, sql`select first_name from users`)
  t.equal(names?.first_name, 'Sponge', 'nor changes the first one')

  const repo = createUserRepository(app.db)
  t.equal((await repo.findByEmail(` ${email.toUpperCase()}`))?.id, user?.id, 'found by any case')
  t.equal(await repo.findByEmail(uniqueEmail('nobody')), null, 'an unknown address: none')
  t.equal(await repo.create({ ...newUser(), email: email.toUpperCase() }), null, 'create refuses a taken address')
})

function newUser() {
  const now = new Date()
  return {
    email: uniqueEmail(),
    passwordHash: 'x',
    firstName: 'N',
    lastName: 'U',
    tocAcceptedAt: now,
    privacyPolicyAcceptedAt: now,
  }
}

t.test('a confirmed e-mail change moves the lookup row; account deletion frees the address', async (t) => {
  const app = await buildTestApp(t)
  const user = await createUser(app)
  const tokens = await login(app, user)
  const next = uniqueEmail('moved')
  const patch = await app.inject({
    method: 'PATCH',
    url: '/v1/users/me',
    headers: bearer(tokens),
    payload: { email: next, password: user.password },
  })
  t.equal(patch.statusCode, 200, patch.body)
  t.same(await lookup(app.db, next), [], 'a pending address is not in the lookup')
  const code = await codeFromMail(app, next, 'email_change')
  const done = await app.inject({
    method: 'POST',
    url: '/v1/users/me/email/confirm',
    headers: bearer(tokens),
    payload: { code },
  })
  t.equal(done.statusCode, 200, done.body)
  t.same(await lookup(app.db, next), [{ email: next, user_id: user.id }], 'the new address names the account')
  t.same(await lookup(app.db, user.email), [], 'the old one is free')
  const taker = await createUser(app, { email: user.email })
  t.ok(taker.id, 'and can be registered by someone else')
  t.not(taker.id, user.id)

  t.ok(await createAccountDeletionService(app).deleteAccount(user.id), 'the account is deleted')
  t.same(await lookup(app.db, next), [], 'its address leaves the lookup with it')
  const reborn = await createUser(app, { email: next })
  t.ok(reborn.id, 'the address can be registered again')
})

t.test('the migration fills user_emails from the users of a populated database', async (t) => {
  const before = await databaseMigratedUpTo('_user_emails')
  t.teardown(() => before.close())
  const db = before.db
  const ids = (
    await queryRows<{ id: string }>(
      db,
      sql`insert into users (email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
          values ('one@example.com', 'x', 'O', 'U', now(), now()), ('two@example.com', 'x', 'T', 'U', now(), now())
          returning id`,
    )
  ).map((r) => r.id)
  await before.migrateRest()
  t.same(
    await queryRows(db, sql`select email, user_id from user_emails order by email`),
    [
      { email: 'one@example.com', user_id: ids[0] },
      { email: 'two@example.com', user_id: ids[1] },
    ],
    'every account has its lookup row',
  )
  const unique = await queryRows(
    db,
    sql`select indexname from pg_indexes where tablename = 'users' and indexdef like 'CREATE UNIQUE%' order by indexname`,
  )
  t.same(unique, [{ indexname: 'users_pkey' }], 'users keeps its id as its only unique key')
})
