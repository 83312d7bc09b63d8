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

t.test(
  'webhook_messages and webhook_attempts keyed by (subscription_id, id): the delivery log and queue survive the upgrade',
  async (t) => {
    const database = await databaseMigratedUpTo('_webhook_messages_subscription_key')
    t.teardown(() => database.close())
    const userId = randomUUID()
    const [subscription, otherSubscription, message, sent, event, attempt] = Array.from({ length: 6 }, () =>
      randomUUID(),
    )
    await database.query(sql`
      insert into users (id, email, password_hash, first_name, last_name, toc_accepted_at, privacy_policy_accepted_at)
      values (${userId}, ${`${userId}@example.com`}, 'x', 'A', 'B', now(), now())`)
    await database.query(sql`
      insert into webhook_subscriptions (id, user_id, url, event_types, secret)
      values (${subscription}, ${userId}, 'https://example.com/hook', '{checkin.created}', 'whsec_x'),
             (${otherSubscription}, ${userId}, 'https://example.com/other', '{checkin.created}', 'whsec_y')`)
    await database.query(sql`
      insert into webhook_messages (id, subscription_id, body, event_count, status, attempts)
      values (${message}, ${subscription}, '{"type":"checkin.created"}', 1, 'pending', 1),
             (${sent}, ${subscription}, '{"type":"checkin.created"}', 1, 'succeeded', 2)`)
    await database.query(sql`
      insert into webhook_events (id, subscription_id, user_id, event_type, payload, message_id)
      values (${event}, ${subscription}, ${userId}, 'checkin.created', '{}', ${message}),
             (${randomUUID()}, ${otherSubscription}, ${userId}, 'checkin.created', '{}', null)`)
    await database.query(sql`
      insert into webhook_attempts (id, message_id, subscription_id, attempt, status_code, latency_ms, error)
      values (${attempt}, ${message}, ${subscription}, 1, 503, 12, 'http_503'),
             (${randomUUID()}, ${sent}, ${subscription}, 1, null, 1000, 'timeout'),
             (${randomUUID()}, ${sent}, ${subscription}, 2, 200, 8, null)`)
    // The rows the foreign keys to users are dropped from in the same upgrade (migration drop_user_foreign_keys…).
    await database.query(sql`
      insert into webauthn_challenges (challenge, purpose, user_id, expires_at)
      values ('challenge-1', 'register', ${userId}, now() + interval '5 minutes')`)
    await database.query(sql`
      insert into oauth_models (kind, id, payload, account_id, client_id)
      values ('Grant', 'grant-1', '{}', ${userId}, 'nwc_client')`)

    await database.migrateRest()

    const counts = await database.query<Record<string, number>>(sql`
      select (select count(*) from webhook_messages where subscription_id = ${subscription})::int as messages,
             (select count(*) from webhook_attempts a join webhook_messages m
                 on m.subscription_id = a.subscription_id and m.id = a.message_id)::int as attempts,
             (select count(*) from webhook_events)::int as events,
             (select count(*) from webhook_events e join webhook_messages m
                 on m.subscription_id = e.subscription_id and m.id = e.message_id)::int as batched,
             (select count(*) from webauthn_challenges where user_id = ${userId})::int as challenges,
             (select count(*) from oauth_models where account_id = ${userId})::int as grants`)
    t.same(
      counts,
      [{ messages: 2, attempts: 3, events: 2, batched: 1, challenges: 1, grants: 1 }],
      'every row is there, each attempt and batched event with its message',
    )
    const keys = await database.query<{ table_name: string; columns: string }>(sql`
      select c.table_name, string_agg(k.column_name, ',' order by k.ordinal_position) as columns
        from information_schema.table_constraints c
        join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
       where c.table_name in ('webhook_messages', 'webhook_attempts') and c.constraint_type = 'PRIMARY KEY'
       group by c.table_name order by c.table_name`)
    t.same(keys, [
      { table_name: 'webhook_attempts', columns: 'subscription_id,id' },
      { table_name: 'webhook_messages', columns: 'subscription_id,id' },
    ])
    // The new keys hold: an attempt of a message of another subscription is refused, the message's delete cascades.
    await t.rejects(
      database.query(sql`
        insert into webhook_attempts (message_id, subscription_id, attempt, latency_ms)
        values (${message}, ${otherSubscription}, 2, 5)`),
      'an attempt must name its message with the message’s subscription',
    )
    await database.query(sql`delete from webhook_messages where subscription_id = ${subscription} and id = ${message}`)
    const left = await database.query<{ attempts: number; events: number }>(sql`
      select (select count(*) from webhook_attempts where message_id = ${message})::int as attempts,
             (select count(*) from webhook_events where message_id = ${message})::int as events`)
    t.same(left, [{ attempts: 0, events: 0 }], 'deleting a message deletes its attempts and events')
  },
)
