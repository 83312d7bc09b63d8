import { Ajv, type ErrorObject } from 'ajv'
import addFormats from 'ajv-formats'
import { instantMs, isDateTime } from './date-time-format.ts'

/*
 * The one place every route's input goes through: the Ajv instances behind Fastify's validator compiler.
 * Two rules hold for every schema, whatever the route wrote:
 * - text the database cannot store is refused: PostgreSQL's text and jsonb hold neither U+0000 nor an
 *   unpaired UTF-16 surrogate, so any string (or object key) carrying one is `400 validation_failed`
 *   naming the field, in the body, the query, the path and the declared headers alike;
 * - every `date-time` and `date` has an accepted window (`x-window`), by default 1900..2200, narrower
 *   where a field says so (see `DateTimeWindowSchema` in routes/common.ts). A string outside its window,
 *   or one that names no real instant (the leap second `23:59:60`, which JavaScript's Date and hence the
 *   rest of the code cannot represent), is refused with a message that states the window.
 */

/** `x-window`: the accepted span of a `date-time` (instants) or `date` (calendar days) field. */
export interface TimeWindow {
  /** Earliest accepted value, inclusive: an RFC 3339 instant or a `YYYY-MM-DD` day. */
  min: string
  /** Latest accepted value, inclusive (same forms); or... */
  max?: string
  /** ...at most this many seconds after the server's clock at validation time (a day: today's date then). */
  aheadS?: number
}

export const DEFAULT_DATE_TIME_WINDOW: TimeWindow = { min: '1900-01-01T00:00:00Z', max: '2200-01-01T00:00:00Z' }
export const DEFAULT_DATE_WINDOW: TimeWindow = { min: '1900-01-01', max: '2199-12-31' }

const LEAP_SECOND = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:60(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/
const DAY = /^\d{4}-\d{2}-\d{2}$/

function aheadText(seconds: number): string {
  if (seconds === 0) return 'now'
  if (seconds % 3600 === 0) return `${seconds / 3600} h from now`
  return `${Math.round(seconds / 60)} min from now`
}

/** "between 2000-01-01T00:00:00Z and 24 h from now": the words every refusal and description uses. */
export function windowText(window: TimeWindow, day = false): string {
  const max =
    window.max ??
    (day ? (window.aheadS && window.aheadS > 0 ? 'today (in any time zone)' : 'today') : aheadText(window.aheadS ?? 0))
  return `between ${window.min} and ${max}`
}

/** The fixed ends of an instant window in ms, parsed once per schema instead of once per value (issue 23b). */
interface InstantBounds {
  min: number
  max?: number
}

function windowProblem(window: TimeWindow, value: string, day: boolean, bounds?: InstantBounds): string | null {
  if (day) {
    if (!DAY.test(value)) return null // the `date` format reports it
    const ms = Date.parse(`${value}T00:00:00Z`)
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value) return 'is not a real calendar day'
    const max = window.max ?? new Date(Date.now() + (window.aheadS ?? 0) * 1000).toISOString().slice(0, 10)
    return value < window.min || value > max ? `must be ${windowText(window, true)}` : null
  }
  // The instant the route will store (date-time-format.ts), so the window holds for exactly that instant.
  const ms = instantMs(value)
  if (Number.isNaN(ms)) {
    // A date-time without an instant is the leap second (or hour 24 or minute 60, which the format lets through
    // with it); a leap second at a minute other than 23:59 UTC is told so as well as refused by the format. Any
    // other string (hour 25, February 30) is the format's error alone.
    const leap = 'is not a real instant (a leap second :60 is not accepted; send :59.999)'
    if (!isDateTime(value)) return LEAP_SECOND.test(value) ? leap : null
    return value.slice(17, 19) === '60' ? leap : 'is not a real instant (hours are 00-23 and minutes 00-59)'
  }
  const fixedMax = bounds ? bounds.max : window.max === undefined ? undefined : Date.parse(window.max)
  const max = fixedMax ?? Date.now() + (window.aheadS ?? 0) * 1000
  return ms < (bounds?.min ?? Date.parse(window.min)) || ms > max ? `must be ${windowText(window)}` : null
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what it looks for
const MAYBE_UNSTORABLE = /[\u0000\ud800-\udfff]/

/** A NUL, or a UTF-16 surrogate without its pair: what PostgreSQL's text and jsonb cannot hold. */
export function isUnstorable(s: string): boolean {
  // Almost every string has neither: one native scan, the pairing checked only where a surrogate is.
  if (!MAYBE_UNSTORABLE.test(s)) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0) return true
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true
      i++
    } else if (c >= 0xdc00 && c <= 0xdfff) return true
  }
  return false
}

/** The key as a JSON pointer token, its unstorable characters shown as U+FFFD. */
function pointer(key: string): string {
  let out = ''
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    const paired = c >= 0xd800 && c <= 0xdbff && key.charCodeAt(i + 1) >= 0xdc00 && key.charCodeAt(i + 1) <= 0xdfff
    if (paired) out += key[i] + key[++i]
    else out += c === 0 || (c >= 0xd800 && c <= 0xdfff) ? '\uFFFD' : key[i]
  }
  return out.replace(/~/g, '~0').replace(/\//g, '~1')
}
const TEXT_PROBLEM = 'must not contain U+0000 (NUL) or an unpaired UTF-16 surrogate'
const MAX_TEXT_ERRORS = 100

/** Ajv-shaped errors for every string or key in `data` that PostgreSQL could not store. */
export function unstorableText(data: unknown, onlyKeys?: string[]): ErrorObject[] {
  const out: ErrorObject[] = []
  // The path as keys and indexes, made into a JSON pointer only for a problem (a 10,000-sample body has 60,000
  // strings and keys and no problem: issue 23b).
  const segments: Array<string | number> = []
  const problem = () => {
    let path = ''
    for (const seg of segments) path += typeof seg === 'number' ? `/${seg}` : `/${pointer(seg)}`
    out.push({ instancePath: path, keyword: 'x-text', schemaPath: '#/x-text', params: {}, message: TEXT_PROBLEM })
  }
  const visit = (value: unknown, depth: number) => {
    if (out.length >= MAX_TEXT_ERRORS || depth > 256) return
    if (typeof value === 'string') {
      if (isUnstorable(value)) problem()
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        segments.push(i)
        visit(value[i], depth + 1)
        segments.pop()
      }
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) {
        segments.push(key)
        if (isUnstorable(key)) problem()
        visit((value as Record<string, unknown>)[key], depth + 1)
        segments.pop()
      }
    }
  }
  if (onlyKeys && data !== null && typeof data === 'object') {
    for (const key of onlyKeys) {
      segments.push(key)
      visit((data as Record<string, unknown>)[key], 1)
      segments.pop()
    }
  } else visit(data, 0)
  return out
}

const NOT_SCHEMAS = new Set(['examples', 'default', 'enum', 'const', 'description', 'x-window'])

/**
 * A copy of the schema where every `date-time` or `date` string without its own `x-window` has the default
 * one. Copied, never changed in place: the route's schema object is also what the OpenAPI document shows.
 */
export function withDefaultWindows<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(withDefaultWindows) as T
  if (schema === null || typeof schema !== 'object') return schema
  const copy: Record<string | symbol, unknown> = { ...(schema as Record<string | symbol, unknown>) }
  for (const [k, v] of Object.entries(copy)) if (!NOT_SCHEMAS.has(k)) copy[k] = withDefaultWindows(v)
  if (copy['x-window'] === undefined && (copy.format === 'date-time' || copy.format === 'date')) {
    copy['x-window'] = copy.format === 'date' ? DEFAULT_DATE_WINDOW : DEFAULT_DATE_TIME_WINDOW
  }
  return copy as T
}

/**
 * `x-ranges`: on an object whose `by` property picks the valid range of its `of` property (a measurement
 * sample: its type picks the range of its value). Part of the schema, so a batch's range problems are
 * reported with its format problems in one answer, each at the value's own path.
 */
export interface RangesByKind {
  by: string
  of: string
  ranges: Record<string, { min: number; max: number; unit: string; integer?: boolean }>
}

export function rangeProblem(range: RangesByKind['ranges'][string], value: number): string | null {
  if (!Number.isFinite(value)) return 'must be a finite number'
  if (value < range.min || value > range.max) return `must be between ${range.min} and ${range.max} ${range.unit}`
  if (range.integer && !Number.isInteger(value)) return 'must be a whole number'
  return null
}

export function makeAjv(coerceTypes: false | 'array') {
  const ajv = new Ajv({ removeAdditional: false, allErrors: true, coerceTypes, useDefaults: true, strict: false })
  addFormats.default(ajv)
  // The same answers as ajv-formats' date-time, several times faster (a 10,000-sample upload has 10,000).
  ajv.addFormat('date-time', isDateTime)
  ajv.addKeyword({
    keyword: 'x-window',
    type: 'string',
    schemaType: 'object',
    errors: true,
    compile(window: TimeWindow, parentSchema) {
      const day = (parentSchema as { format?: string }).format === 'date'
      const bounds = day
        ? undefined
        : { min: Date.parse(window.min), max: window.max === undefined ? undefined : Date.parse(window.max) }
      const check = function checkWindow(value: string) {
        const problem = windowProblem(window, value, day, bounds)
        // Ajv reads `errors` only after a false answer: no array made for each valid value.
        if (problem) check.errors = [{ keyword: 'x-window', params: { window }, message: problem }]
        return problem === null
      } as ((value: string) => boolean) & { errors: Partial<ErrorObject>[] }
      check.errors = []
      return check
    },
  })
  ajv.addKeyword({
    keyword: 'x-ranges',
    type: 'object',
    schemaType: 'object',
    errors: true,
    validate: function checkRanges(
      spec: RangesByKind,
      data: Record<string, unknown>,
      _parent?: unknown,
      where?: { instancePath: string },
    ) {
      const kind = data[spec.by]
      const value = data[spec.of]
      const range = typeof kind === 'string' ? spec.ranges[kind] : undefined
      // An unknown kind or a value of the wrong type is the schema's own error.
      const problem = range && typeof value === 'number' ? rangeProblem(range, value) : null
      // Ajv reads `errors` only after a false answer: no array made for each valid sample.
      if (problem) {
        ;(checkRanges as unknown as { errors: Partial<ErrorObject>[] }).errors = [
          {
            keyword: 'x-ranges',
            instancePath: `${where?.instancePath ?? ''}/${spec.of}`,
            params: {},
            message: problem,
          },
        ]
      }
      return problem === null
    },
  })
  return ajv
}

/**
 * Marks a body schema whose route stores text only after replacing what PostgreSQL cannot hold (OTLP
 * telemetry: one odd attribute must not lose a whole export, which an exporter does not retry on 400).
 * Such a body skips the refusal of unstorable text; nothing else.
 */
export const SANITIZED_TEXT = { 'x-text': 'sanitized' } as const

type HttpPart = 'body' | 'querystring' | 'params' | 'headers' | string

/**
 * Fastify's validator compiler over the two Ajv instances: JSON bodies strict (42 is not "42"); query
 * strings, params and headers coerced from text. After the schema, the walk for unstorable text; the
 * caller gets every problem of both in one answer.
 */
export function makeValidatorCompiler() {
  const validators = { body: makeAjv(false), other: makeAjv('array') }
  return function compileValidator({ schema, httpPart }: { schema: object; httpPart?: HttpPart }) {
    const validate = (httpPart === 'body' ? validators.body : validators.other).compile(withDefaultWindows(schema))
    // Headers hold far more than a route declares; only the declared ones are data for it.
    const declared =
      httpPart === 'headers' ? Object.keys((schema as { properties?: object }).properties ?? {}) : undefined
    const sanitized = (schema as Record<string, unknown>)['x-text'] === SANITIZED_TEXT['x-text']
    const check = function validateInput(data: unknown) {
      const ok = validate(data)
      const text = sanitized ? [] : unstorableText(data, declared)
      if (ok && text.length === 0) {
        check.errors = null
        return true
      }
      check.errors = [...(ok ? [] : (validate.errors ?? [])), ...text]
      return false
    } as ((data: unknown) => boolean) & { errors: ErrorObject[] | null }
    check.errors = null
    return check
  }
}
