import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { freshDatabase } from '../helpers/database.ts'

// Issue 21, Citus-ready: user data is distributed by user_id, so every user-data table's primary key and
// unique keys lead with user_id (a shard can enforce them alone) and a foreign key between two user-data
// tables carries user_id on both sides (the rows live on one shard: co-location). docs/scaling.md gives the
// create_distributed_table / create_reference_table statement of every table listed here.
//
// A table with a user_id column is user data unless it is listed below with the reason; a table without one
// must be listed (a table keyed by another user column, like shares.owner_id, must not slip past the rule).

/**
 * User data whose user column is not called user_id: the column it is distributed by (co-located with
 * users), which its keys must lead with and its foreign keys must carry.
 */
const USER_COLUMN: Record<string, string> = {
  users: 'id',
  shares: 'owner_id',
}

/** Replicated to every node (create_reference_table): small, global, joined with user data. */
const REFERENCE: Record<string, string> = {
  client_apps: 'the first-party apps: a handful of rows, read on every login and refresh',
  oauth_clients: 'the third-party apps (issue 17): few rows, read on every OAuth request',
  firmware_releases: 'the firmware catalogue: few rows, read by every device, referenced by install reports',
}

/** Not user data and never joined with it: distributed by their own key, or left on the coordinator. */
const GLOBAL: Record<string, string> = {
  rate_counters: 'counters keyed by route and subject (IP or account); distributed by key',
  mail_outbox: 'outgoing mail by address, sent by the worker; distributed by its id',
  audit_log: "admins' actions across users, read by admins only; distributed by its id",
  telemetry_spans: "the apps' telemetry, queried by admins across users (user_id is optional); by trace_id",
  telemetry_logs:
    "the apps' telemetry, queried by admins across users (user_id is optional); by its content hash (its identity)",
  telemetry_metric_points:
    "the apps' telemetry, queried by admins across users (user_id is optional); by its content hash (its identity)",
  webauthn_challenges: 'short-lived ceremony state; no user yet for a passwordless login; by challenge',
  passkey_credentials:
    'which account a credential id belongs to (a passwordless login has no user yet; one account per id): by credential_id',
  mfa_login_token_keys: 'the opaque mfa_token is presented before the user is known: token hash → user; by hash',
  login_attempts_unknown: 'failed logins on addresses without an account (no user): by the address hash',
  peer_groups: 'a peer group is shared by its members: distributed by group id with its members and invites',
  peer_group_members: 'distributed by group_id, co-located with peer_groups',
  peer_group_invites: 'distributed by group_id, co-located with peer_groups',
  oauth_models:
    "oidc-provider's grants, codes and tokens, found by (kind, id) alone when a token is presented: distributed by id",
  user_emails: 'which account an address belongs to (login, register, reset: no user yet; one per address): by email',
  share_invite_codes: 'an e-mailed invite code names its share (owner_id, share id) before any account: by code_hash',
  peer_group_invite_codes:
    'an e-mailed group invite code names its invite (group_id, invite id), unique across groups: by code_hash',
  webhook_subscriptions: 'owned by an account or by a client app (no user): distributed by subscription id',
  webhook_messages:
    'keyed by (subscription_id, id): distributed by subscription_id, co-located with webhook_subscriptions',
  webhook_attempts:
    'keyed by (subscription_id, id), its message referred to by (subscription_id, message_id): distributed by subscription_id',
  webhook_events:
    "a user's change queued for a subscription's message: keyed by (subscription_id, id), distributed by subscription_id with the messages",
}

/**
 * User data that does not follow the rule yet, and what it needs first (docs/scaling.md). The test checks
 * that each still breaks it: a table fixed here must move to the rule.
 */
const PENDING: Record<string, string> = {}

interface KeyRow {
  table_name: string
  constraint_name: string
  constraint_type: string
  column_name: string
  ordinal_position: number
}

t.test('every user-data table keys on user_id first, and co-locates its foreign keys', async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const db = database.db

  const tables = (
    await queryRows<{ table_name: string }>(
      db,
      sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
    )
  ).map((r) => r.table_name)
  const notNull = new Set(
    (
      await queryRows<{ table_name: string; column_name: string }>(
        db,
        sql`select table_name, column_name from information_schema.columns where table_schema = 'public' and is_nullable = 'NO'`,
      )
    ).map((r) => `${r.table_name}.${r.column_name}`),
  )
  /** The table's user column (NOT NULL): user_id, or the one USER_COLUMN names. */
  const userColumn = (table: string) => USER_COLUMN[table] ?? 'user_id'
  const withUserId = new Set(tables.filter((n) => notNull.has(`${n}.${userColumn(n)}`)))
  const keyRows = await queryRows<KeyRow>(
    db,
    sql`select tc.table_name, tc.constraint_name, tc.constraint_type, k.column_name, k.ordinal_position
          from information_schema.table_constraints tc
          join information_schema.key_column_usage k
            on k.constraint_schema = tc.constraint_schema and k.constraint_name = tc.constraint_name
         where tc.table_schema = 'public' and tc.constraint_type in ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
         order by tc.table_name, tc.constraint_name, k.ordinal_position`,
  )
  // Foreign keys: referencing column i matches the referenced unique key's column at position_in_unique_constraint.
  const fkRows = await queryRows<{
    table_name: string
    constraint_name: string
    column_name: string
    ref_table: string
    ref_column: string
  }>(
    db,
    sql`select k.table_name, k.constraint_name, k.column_name, r.table_name as ref_table, r.column_name as ref_column
          from information_schema.referential_constraints rc
          join information_schema.key_column_usage k
            on k.constraint_schema = rc.constraint_schema and k.constraint_name = rc.constraint_name
          join information_schema.key_column_usage r
            on r.constraint_schema = rc.unique_constraint_schema and r.constraint_name = rc.unique_constraint_name
           and r.ordinal_position = k.position_in_unique_constraint
         where k.table_schema = 'public'`,
  )
  // Unique indexes made with CREATE UNIQUE INDEX are not constraints, so information_schema does not list them.
  const uniqueIndexes = await queryRows<{ table_name: string; index_name: string; first_column: string }>(
    db,
    sql`select c.relname as table_name, ic.relname as index_name, a.attname as first_column
          from pg_index i
          join pg_class ic on ic.oid = i.indexrelid
          join pg_class c on c.oid = i.indrelid
          join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
         where n.nspname = 'public' and i.indisunique`,
  )

  const listed = (name: string) => name in REFERENCE || name in GLOBAL || name in PENDING
  const unclassified = tables.filter((n) => !withUserId.has(n) && !listed(n))
  t.same(unclassified, [], 'every table without a user_id column is classified (reference or global, with why)')

  /** What breaks the rule in one table; empty when it follows it. */
  function problems(table: string): string[] {
    const out: string[] = []
    const column = userColumn(table)
    if (!withUserId.has(table)) return [`no NOT NULL ${column} column`]
    const keys = new Map<string, KeyRow[]>()
    for (const r of keyRows.filter((r) => r.table_name === table && r.constraint_type !== 'FOREIGN KEY')) {
      keys.set(r.constraint_name, [...(keys.get(r.constraint_name) ?? []), r])
    }
    const pk = [...keys.values()].find((cols) => cols[0]?.constraint_type === 'PRIMARY KEY')
    if (!pk) out.push('no primary key')
    for (const [name, cols] of keys) {
      if (cols[0]?.column_name !== column)
        out.push(`${name} (${cols.map((c) => c.column_name)}) does not lead with ${column}`)
    }
    for (const ix of uniqueIndexes.filter((i) => i.table_name === table)) {
      if (ix.first_column !== column) out.push(`unique index ${ix.index_name} does not lead with ${column}`)
    }
    const fks = new Map<string, typeof fkRows>()
    for (const r of fkRows.filter((r) => r.table_name === table)) {
      fks.set(r.constraint_name, [...(fks.get(r.constraint_name) ?? []), r])
    }
    for (const [name, cols] of fks) {
      const target = cols[0]?.ref_table as string
      if (target in REFERENCE) continue
      if (target === 'users') {
        // A partitioned table's foreign key is listed once per partition under the same name: count columns.
        const columns = new Set(cols.map((c) => c.column_name))
        if (columns.size !== 1 || !columns.has(column)) out.push(`${name}: refers to users other than by ${column}`)
        continue
      }
      const colocated = cols.some((c) => c.column_name === column && c.ref_column === userColumn(target))
      if (!colocated) out.push(`${name} → ${target} does not carry ${column} on both sides`)
    }
    return out
  }

  for (const table of tables.filter((n) => withUserId.has(n) && !listed(n)).sort()) {
    t.same(problems(table), [], `${table}: keys lead with ${userColumn(table)}, foreign keys co-located`)
  }
  for (const [table, why] of Object.entries(PENDING)) {
    if (!tables.includes(table)) continue
    t.not(problems(table).length, 0, `${table} is still pending (${why}); once it follows the rule, move it`)
  }
  for (const table of [...Object.keys(REFERENCE), ...Object.keys(GLOBAL), ...Object.keys(USER_COLUMN)]) {
    t.ok(tables.includes(table), `${table} (listed) exists`)
  }
  // Tables distributed by subscription: their keys, and their foreign keys to one another, carry subscription_id.
  for (const table of ['webhook_messages', 'webhook_attempts', 'webhook_events']) {
    const keys = keyRows.filter((r) => r.table_name === table && r.constraint_type !== 'FOREIGN KEY')
    const pk = keys.filter((r) => r.constraint_type === 'PRIMARY KEY')
    t.same(
      pk.map((r) => r.column_name),
      ['subscription_id', 'id'],
      `${table}: the primary key is (subscription_id, id)`,
    )
    if (table === 'webhook_messages') continue
    const toMessages = fkRows.filter((r) => r.table_name === table && r.ref_table === 'webhook_messages')
    t.ok(
      toMessages.some((r) => r.column_name === 'subscription_id' && r.ref_column === 'subscription_id'),
      `${table} → webhook_messages carries subscription_id on both sides`,
    )
  }
  // A user-data table may not refer to a global (non-reference) table: Citus allows foreign keys from a
  // distributed table only to a co-located distributed table or a reference table.
  const toGlobal = fkRows.filter((r) => withUserId.has(r.table_name) && !listed(r.table_name) && r.ref_table in GLOBAL)
  t.same(toGlobal, [], 'no user-data table refers to a global table')
})

/**
 * The tables distributed by a key of their own (docs/scaling.md): the column, and the table they are co-located
 * with. Citus refuses a primary or unique key without the distribution column, and a foreign key to anything but
 * a reference table or a co-located table on the distribution column (a key to `users` from here is refused).
 */
const DISTRIBUTED_BY: Record<string, { column: string; colocateWith?: string }> = {
  rate_counters: { column: 'key' },
  mail_outbox: { column: 'id' },
  audit_log: { column: 'id' },
  telemetry_spans: { column: 'trace_id' },
  telemetry_logs: { column: 'content_hash' },
  telemetry_metric_points: { column: 'content_hash' },
  webauthn_challenges: { column: 'challenge' },
  passkey_credentials: { column: 'credential_id' },
  mfa_login_token_keys: { column: 'token_hash' },
  login_attempts_unknown: { column: 'email_hash' },
  oauth_models: { column: 'id' },
  user_emails: { column: 'email' },
  share_invite_codes: { column: 'code_hash' },
  peer_group_invite_codes: { column: 'code_hash' },
  peer_groups: { column: 'id' },
  peer_group_members: { column: 'group_id', colocateWith: 'peer_groups' },
  peer_group_invites: { column: 'group_id', colocateWith: 'peer_groups' },
  webhook_subscriptions: { column: 'id' },
  webhook_messages: { column: 'subscription_id', colocateWith: 'webhook_subscriptions' },
  webhook_attempts: { column: 'subscription_id', colocateWith: 'webhook_subscriptions' },
  webhook_events: { column: 'subscription_id', colocateWith: 'webhook_subscriptions' },
}

/**
 * What Citus would refuse in those tables: nothing (issue 21; docs/scaling.md). The test fails when the schema
 * has a problem not listed here, so a new key or foreign key that Citus would refuse is caught.
 */
const CITUS_PENDING: string[] = []

t.test(
  'tables distributed by their own key: keys carry the column, foreign keys go to reference or co-located tables',
  async (t) => {
    const database = await freshDatabase()
    t.teardown(() => database.close())
    const db = database.db
    t.same(
      Object.keys(DISTRIBUTED_BY).sort(),
      Object.keys(GLOBAL)
        .filter((n) => n in DISTRIBUTED_BY)
        .sort(),
      'every distributed-by-own-key table is one the first test classifies as global',
    )
    const uniqueKeys = await queryRows<{ table_name: string; index_name: string; columns: string[] }>(
      db,
      sql`select c.relname as table_name, ic.relname as index_name,
               array(select a.attname::text from unnest(i.indkey) k join pg_attribute a on a.attrelid = c.oid and a.attnum = k) as columns
          from pg_index i
          join pg_class ic on ic.oid = i.indexrelid
          join pg_class c on c.oid = i.indrelid
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and i.indisunique`,
    )
    const foreignKeys = await queryRows<{
      table_name: string
      constraint_name: string
      ref_table: string
      pairs: string[]
    }>(
      db,
      sql`select c.relname as table_name, con.conname as constraint_name, r.relname as ref_table,
               array(select a.attname::text || '=' || b.attname::text
                       from unnest(con.conkey, con.confkey) as k(l, f)
                       join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.l
                       join pg_attribute b on b.attrelid = con.confrelid and b.attnum = k.f) as pairs
          from pg_constraint con
          join pg_class c on c.oid = con.conrelid
          join pg_class r on r.oid = con.confrelid
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and con.contype = 'f'`,
    )
    const group = (table: string) => DISTRIBUTED_BY[table]?.colocateWith ?? table
    const found = new Set<string>()
    for (const [table, { column }] of Object.entries(DISTRIBUTED_BY)) {
      for (const key of uniqueKeys.filter((k) => k.table_name === table)) {
        if (!key.columns.includes(column)) found.add(`${table}: key ${key.index_name} without ${column}`)
      }
      for (const fk of foreignKeys.filter((f) => f.table_name === table)) {
        if (fk.ref_table in REFERENCE) continue
        const target = DISTRIBUTED_BY[fk.ref_table]
        const colocated =
          target !== undefined &&
          group(fk.ref_table) === group(table) &&
          fk.pairs.includes(`${column}=${target.column}`)
        if (!colocated) found.add(`${table}: foreign key to ${fk.ref_table}`)
      }
    }
    t.same([...found].sort(), [...CITUS_PENDING].sort(), 'what Citus would refuse is exactly the pending list')
  },
)
