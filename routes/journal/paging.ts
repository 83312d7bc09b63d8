import { errors } from '../../plugins/errors.ts'

/** Optional `[from, to)` bounds of a list query; `from` must come before `to`. */
export function parseTimeRange(from: string | undefined, to: string | undefined) {
  const range = { from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined }
  if (range.from && range.to && range.from >= range.to) {
    throw errors.validation([{ field: 'query.to', problem: 'must be later than from' }])
  }
  return range
}

/**
 * One page from `limit + 1` rows fetched in keyset order: the extra row only tells that
 * another page exists, and the cursor points at the last row shown.
 */
export function toPage<R, J>(rows: R[], limit: number, toJson: (row: R) => J, cursorOf: (row: R) => string) {
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: page.map(toJson),
    next_cursor: rows.length > limit && last !== undefined ? cursorOf(last) : null,
  }
}
