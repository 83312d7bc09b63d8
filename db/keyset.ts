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

/**
 * Batches of `batch` rows by a keyset: `fetch(after, batch)` answers the next rows after the key of
 * the previous batch's last row (`keyOf`), in a stable order. The domains' `exportRows` (account export) read through their list queries with it.
 */
export async function* keysetRows<R, K, J>(
  fetch: (after: K | undefined, batch: number) => Promise<R[]>,
  keyOf: (row: R) => K,
  toJson: (row: R) => J,
  batch = 1000,
): AsyncGenerator<J> {
  let after: K | undefined
  for (;;) {
    const rows = await fetch(after, batch)
    for (const r of rows) yield toJson(r)
    const last = rows.at(-1)
    if (last === undefined || rows.length < batch) return
    after = keyOf(last)
  }
}
