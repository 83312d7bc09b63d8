import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { queryRows } from '../../db/client.ts'
import { createUser, login } from './fixtures.ts'

/** An admin and its bearer header, logged in through the admin login route's twin (same tokens). */
export async function adminWithToken(app: FastifyInstance) {
  const user = await createUser(app, { role: 'admin' })
  const tokens = await login(app, user)
  return { user, tokens, headers: { authorization: `Bearer ${tokens.access}` } }
}

export interface Leftover {
  table: string
  column: string
  rows: number
}

/**
 * Every row, in every table of the public schema, that still mentions the user: any text, uuid,
 * array or JSON column whose text contains the user's id or e-mail. Tables that other domains
 * add later are covered without a change here.
 */
export async function rowsMentioning(app: FastifyInstance, needles: string[]): Promise<Leftover[]> {
  const columns = await queryRows<{ table_name: string; column_name: string }>(
    app.db,
    sql`select c.table_name, c.column_name
          from information_schema.columns c
          join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
         where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
           and (c.data_type in ('text', 'uuid', 'character varying', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED'))
         order by 1, 2`,
  )
  const found: Leftover[] = []
  for (const { table_name: table, column_name: column } of columns) {
    const conditions = needles.map((n) => sql`position(lower(${n}) in lower(${sql.identifier(column)}::text)) > 0`)
    const [row] = await queryRows<{ n: number }>(
      app.db,
      sql`select count(*)::int as n from ${sql.identifier(table)} where ${sql.join(conditions, sql` or `)}`,
    )
    if (row.n > 0) found.push({ table, column, rows: row.n })
  }
  return found
}

/** Every table with a user_id column (the issue's rule: rows owned by a user carry it). */
export async function tablesWithUserId(app: FastifyInstance): Promise<string[]> {
  const rows = await queryRows<{ table_name: string }>(
    app.db,
    sql`select table_name from information_schema.columns
         where table_schema = 'public' and column_name = 'user_id' order by 1`,
  )
  return rows.map((r) => r.table_name)
}
