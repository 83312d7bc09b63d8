import { instantDate } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'

/** Optional `[from, to)` bounds of a list query; `from` must come before `to`. */
export function parseTimeRange(from: string | undefined, to: string | undefined) {
  const range = { from: from ? instantDate(from) : undefined, to: to ? instantDate(to) : undefined }
  if (range.from && range.to && range.from >= range.to) {
    throw errors.validation([{ field: 'query.to', problem: 'must be later than from' }])
  }
  return range
}
