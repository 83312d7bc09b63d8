import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { databaseMigratedUpTo } from '../helpers/migrate-partway.ts'

// Migrations that move data, run on a database an existing deployment has: the rows are written with the old
// schema, then the rest of the migrations applies as an upgrade does.

t.test('mfa_login_tokens: a login waiting for its second factor keeps working across the upgrade', async (t) => {
  const database = await databaseMigratedUpTo('_mfa_login_tokens_user_key')
  t.teardown(() => database.close())
  const userId = randomUUID()
  await database.query(sql`
    insert into users (id, email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
    values (${userId}, ${`${userId}@example.com`}, 'x', 'A', 'B', now(), now())`)
  await database.query(sql`
    insert into mfa_login_tokens (user_id, token_hash, expires_at)
    values (${userId}, 'live-hash', now() + interval '5 minutes'), (${userId}, 'old-hash', now() - interval '1 minute')`)

  await database.migrateRest()

  const keys = await database.query<{ token_hash: string; user_id: string }>(
    sql`select token_hash, user_id from mfa_login_token_keys order by token_hash`,
  )
  t.same(keys, [
    { token_hash: 'live-hash', user_id: userId },
    { token_hash: 'old-hash', user_id: userId },
  ])
  const tokens = await database.query<{ n: number }>(
    sql`select count(*)::int as n from mfa_login_tokens where user_id = ${userId}`,
  )
  t.equal(tokens[0].n, 2, 'the token rows stay')
})
