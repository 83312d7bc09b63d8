import { customType, pgTable, timestamp, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

const pgLsn = customType<{ data: string }>({ dataType: () => 'pg_lsn' })

/**
 * Read-your-writes across processes (db/replicas.ts): the primary's WAL position after a user's last
 * write, until every replica in rotation must have replayed it. Only written and read on the primary,
 * and only when DATABASE_REPLICA_URLS is set.
 */
export const readFences = pgTable('read_fences', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  lsn: pgLsn('lsn').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
})
