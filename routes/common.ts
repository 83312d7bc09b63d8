import { type TSchema, Type } from '@sinclair/typebox'
import { errors } from '../plugins/errors.ts'

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
export const DateTimeSchema = Type.String({ format: 'date-time' })
export const DateSchema = Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' })

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

/** Opaque cursors: base64url of a JSON tuple (usually `[sort key, id]`). */
export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url')
}

export function decodeCursor(cursor: string | undefined, arity: number): Array<string | number> | undefined {
  if (cursor === undefined) return undefined
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(v) && v.length === arity && v.every((x) => typeof x === 'string' || typeof x === 'number'))
      return v
  } catch {}
  throw errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The usual keyset cursor: (time, id) of the last row of the page. */
export function encodeTimeCursor(at: Date, id: string): string {
  return encodeCursor([at.toISOString(), id])
}

export function decodeTimeCursor(cursor: string | undefined): { at: Date; id: string } | undefined {
  const v = decodeCursor(cursor, 2)
  if (!v) return undefined
  const at = new Date(String(v[0]))
  if (Number.isNaN(at.getTime()) || !UUID_RE.test(String(v[1]))) {
    throw errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
  }
  return { at, id: String(v[1]) }
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
