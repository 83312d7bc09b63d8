import fc from 'fast-check'

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

const isoDate = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2035-01-01T00:00:00Z'),
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
