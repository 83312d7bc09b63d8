import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { emailKey } from '../../routes/auth/history-repository.ts'
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

t.test(
  'login_attempts: attempts without an account move to login_attempts_unknown by the hash the server uses',
  async (t) => {
    const database = await databaseMigratedUpTo('_login_attempts_user_key')
    t.teardown(() => database.close())
    const userId = randomUUID()
    const ghost = randomUUID()
    await database.query(sql`
    insert into users (id, email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
    values (${userId}, ${`${userId}@example.com`}, 'x', 'A', 'B', now(), now())`)
    await database.query(sql`
    insert into login_attempts (id, user_id, email, success, reason, ip, user_agent, created_at)
    values (${randomUUID()}, ${userId}, ${`${userId}@example.com`}, false, 'invalid_credentials', '10.0.0.1', 'curl', now()),
           (${ghost}, null, 'nobody-ünïcode@example.com', false, 'invalid_credentials', '10.0.0.2', 'curl/8',
            '2026-11-30T10:00:00.123Z')`)

    await database.migrateRest()

    const known = await database.query<{ user_id: string; email: string }>(
      sql`select user_id, email from login_attempts`,
    )
    t.same(known, [{ user_id: userId, email: `${userId}@example.com` }], "the account's attempt stays")
    const moved = await database.query<Record<string, unknown>>(
      sql`select id, email_hash, reason, ip, user_agent, created_at from login_attempts_unknown`,
    )
    t.equal(moved.length, 1)
    t.match(moved[0], {
      id: ghost,
      email_hash: emailKey('nobody-ünïcode@example.com'),
      reason: 'invalid_credentials',
      ip: '10.0.0.2',
      user_agent: 'curl/8',
    })
    t.equal(new Date(moved[0].created_at as string).toISOString(), '2026-11-30T10:00:00.123Z')
    const nullable = await database.query<{ is_nullable: string }>(
      sql`select is_nullable from information_schema.columns where table_name = 'login_attempts' and column_name = 'user_id'`,
    )
    t.same(nullable, [{ is_nullable: 'NO' }])
  },
)
