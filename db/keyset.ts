import { type Column, type SQL, and, eq, gt, lt, or } from 'drizzle-orm'

/** A position in a keyset order: the sort key and the id of the last row already seen. */
export interface KeysetAfter<K = Date> {
  at: K
  id: string
}

/**
 * The keyset condition of a page, written once: the rows after `after` in the order (`key`, `id`),
 * `desc` (newest first, the lists) or `asc` (oldest first, the exports). No condition without a cursor.
 * The pair makes the order total, so a page never repeats or skips a row that shares its key.
 */
export function keysetAfter<K>(
  key: Column,
  id: Column,
  after: KeysetAfter<K> | undefined,
  direction: 'asc' | 'desc' = 'desc',
): SQL | undefined {
  if (!after) return undefined
  const beyond = direction === 'desc' ? lt : gt
  return or(beyond(key, after.at), and(eq(key, after.at), beyond(id, after.id)))
}
