import { type StringOptions, type TSchema, Type } from '@sinclair/typebox'
import { instantMs } from '../plugins/date-time-format.ts'
import { errors } from '../plugins/errors.ts'
import {
  DEFAULT_DATE_TIME_WINDOW,
  DEFAULT_DATE_WINDOW,
  type TimeWindow,
  unstorableText,
  windowText,
} from '../plugins/input-validation.ts'

/** Shared schema pieces: every domain builds its routes from these. */

export const ErrorDetailSchema = Type.Object(
  { field: Type.String(), problem: Type.String() },
  { additionalProperties: false },
)

export const ErrorSchema = Type.Object(
  {
    error: Type.String({ description: 'Stable identifier of the error, e.g. `validation_failed`.' }),
    message: Type.String({ description: 'Explanation for a person.' }),
    details: Type.Optional(Type.Array(ErrorDetailSchema)),
  },
  { additionalProperties: false, description: 'Error' },
)

/** `{ 400: ErrorSchema, 401: ErrorSchema }` for the statuses a route can fail with. */
export function errorResponses<const S extends number>(...statuses: S[]): Record<S, typeof ErrorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorSchema])) as Record<S, typeof ErrorSchema>
}

export const StatusSuccessSchema = Type.Object(
  { status: Type.Literal('success') },
  { additionalProperties: false, description: 'Successful request' },
)
export const SUCCESS = { status: 'success' as const }

export const UuidSchema = Type.String({ format: 'uuid' })
export const IdParamsSchema = Type.Object({ id: UuidSchema }, { additionalProperties: false })
/** Any `date-time` without a window of its own is accepted between 1900 and 2200 (plugins/input-validation.ts). */
export const DateTimeSchema = Type.String({ format: 'date-time' })
export const DateSchema = Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' })

/** The accepted windows of the fields that have one narrower than the default. */
export const WINDOWS = {
  /** Recorded by a device or a person: no NOWATCH device predates 2000; a clock may run up to a day ahead. */
  recorded: { min: '2000-01-01T00:00:00Z', aheadS: 24 * 3600 },
  /** Noted by a person about their own day: after 1900, at most 5 minutes ahead (a phone's clock drifts). */
  journal: { min: '1900-01-01T00:00:00Z', aheadS: 300 },
  /** A birth date: after 1900, and not later than today in the time zone furthest ahead. */
  birth: { min: '1900-01-01', aheadS: 14 * 3600 },
} as const satisfies Record<string, TimeWindow>

/** An RFC 3339 date-time accepted only within `window`; the refusal and the description both state it. */
export function DateTimeWindowSchema(window: TimeWindow, options: StringOptions = {}) {
  const said = `Accepted ${windowText(window)}.`
  return Type.String({
    ...options,
    format: 'date-time',
    'x-window': window,
    description: options.description ? `${options.description} ${said}` : said,
  })
}

/** A `YYYY-MM-DD` calendar day accepted only within `window`. */
export function DateWindowSchema(window: TimeWindow, options: StringOptions = {}) {
  const said = `Accepted ${windowText(window, true)}.`
  return Type.String({
    ...options,
    format: 'date',
    pattern: '^\\d{4}-\\d{2}-\\d{2}$',
    'x-window': window,
    description: options.description ? `${options.description} ${said}` : said,
  })
}

export const PaginationQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
})

export function PageSchema<T extends TSchema>(item: T) {
  return Type.Object(
    {
      data: Type.Array(item),
      next_cursor: Type.Union([Type.String(), Type.Null()], {
        description: 'Pass as `cursor` to get the next page; null on the last page.',
      }),
    },
    { additionalProperties: false },
  )
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const badCursor = () => errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])

/**
 * Opaque cursors: base64url of a JSON tuple (usually `[sort key, id]`). A cursor is input like any other:
 * a hand-made one with unstorable text, a number JSON cannot hold exactly, an instant outside the
 * default window or a malformed id is `400 validation_failed` on `query.cursor`, never a database error.
 */
export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url')
}

export function decodeCursor(cursor: string | undefined, arity: number): Array<string | number> | undefined {
  if (cursor === undefined) return undefined
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === arity &&
      v.every((x) => (typeof x === 'string' && x.length <= 512) || Number.isSafeInteger(x) || Number.isFinite(x)) &&
      unstorableText(v).length === 0
    )
      return v
  } catch {}
  throw badCursor()
}

/** A cursor's instant: the ISO form this API writes, within the default window. */
export function cursorInstant(value: string | number): Date {
  const ms = typeof value === 'string' ? instantMs(value) : Number.NaN
  if (!(ms >= Date.parse(DEFAULT_DATE_TIME_WINDOW.min) && ms <= Date.parse(DEFAULT_DATE_TIME_WINDOW.max ?? '')))
    throw badCursor()
  return new Date(ms)
}

/** A cursor's calendar day, `YYYY-MM-DD` within the default window. */
export function cursorDay(value: string | number): string {
  const day = String(value)
  const real = /^\d{4}-\d{2}-\d{2}$/.test(day) && new Date(`${day}T00:00:00Z`).toISOString().startsWith(day)
  if (!real || day < DEFAULT_DATE_WINDOW.min || day > (DEFAULT_DATE_WINDOW.max ?? '')) throw badCursor()
  return day
}

/** A cursor's row id. */
export function cursorUuid(value: string | number): string {
  if (!UUID_RE.test(String(value))) throw badCursor()
  return String(value)
}

/** The usual keyset cursor: (time, id) of the last row of the page. */
export function encodeTimeCursor(at: Date, id: string): string {
  return encodeCursor([at.toISOString(), id])
}

export function decodeTimeCursor(cursor: string | undefined): { at: Date; id: string } | undefined {
  const v = decodeCursor(cursor, 2)
  if (!v) return undefined
  return { at: cursorInstant(v[0]), id: cursorUuid(v[1]) }
}

/**
 * The page size of a list request. The querystring schema's default (PaginationQuerySchema: 50) fills
 * it in before any handler runs (ajv `useDefaults`), so that default is the only one.
 */
export function pageLimit(query: { limit?: number }): number {
  if (query.limit === undefined) throw new Error('limit is unset: the querystring schema must give it a default')
  return query.limit
}

/**
 * One keyset page of a list request: fetches `limit + 1` rows (the extra row only tells that there is a
 * next page) and answers `{ data, next_cursor }`. `fetch` reads after the request's decoded cursor.
 */
export async function keysetPage<R, J>(
  query: { limit?: number },
  fetch: (take: number) => Promise<R[]>,
  toJson: (row: R) => J,
  cursorOf: (row: R) => string,
) {
  const limit = pageLimit(query)
  return toPage(await fetch(limit + 1), limit, toJson, cursorOf)
}

/** A page of `limit` rows out of `limit + 1` fetched: the extra row only tells that there is a next page. */
export function toPage<R, J>(rows: R[], limit: number, toJson: (row: R) => J, cursorOf: (row: R) => string) {
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: page.map(toJson),
    next_cursor: rows.length > limit && last !== undefined ? cursorOf(last) : null,
  }
}
