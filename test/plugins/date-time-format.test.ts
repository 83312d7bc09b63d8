import { createRequire } from 'node:module'
import fc from 'fast-check'
import t from 'tap'
import { canonicalInstantMs, instantMs, isDateTime } from '../../plugins/date-time-format.ts'
import { makeAjv } from '../../plugins/input-validation.ts'

// The oracle: ajv-formats' own full `date-time`, which plugins/date-time-format.ts replaces for speed.
const formats = createRequire(import.meta.url)('ajv-formats/dist/formats.js') as {
  fullFormats: Record<string, { validate: (s: string) => boolean }>
}
const oracle = formats.fullFormats['date-time'].validate

const pad = (n: number, width: number) => String(n).padStart(width, '0')
const digits = (min: number, max: number, width: number) => fc.integer({ min, max }).map((n) => pad(n, width))
// Every character JavaScript's \s matches, the letters that split or end a date-time, and near misses.
const SEPARATORS = [
  ...['T', 't', ' ', '\t', '\n', '\v', '\f', '\r', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029'],
  ...['\u202f', '\u205f', '\u3000', '\ufeff', 'x', '_', '\u0000', '\u00e9', '\u200b', '\u180e'],
]
const fraction = fc.oneof(
  fc.constant(''),
  fc.constant('.'),
  fc.stringMatching(/^\.\d{1,25}$/),
  fc.constantFrom('.999999999999', '.9999999999999', '.99999999999999999', '.99999999999999999999', '.5'),
)
const offset = fc.oneof(
  fc.constantFrom('Z', 'z', '', 'ZZ', 'Z ', '+', '-', '+00', '-00:00', '+0530', '+05:', '+05:3', '+05:300', '+5:30'),
  fc
    .tuple(fc.constantFrom('+', '-'), digits(0, 30, 2), fc.constantFrom(':', '', '::'), digits(0, 75, 2))
    .map(([s, h, c, m]) => `${s}${h}${c}${m}`),
  fc.tuple(fc.constantFrom('+', '-'), digits(0, 99, 2)).map(([s, h]) => `${s}${h}`),
)
// Near-valid strings: each field anywhere in or just outside its range (leap days, hour 24, second 60 in any
// zone), every separator, fractions long enough to round up to 60, offsets well- and ill-formed.
const nearDateTime = fc
  .tuple(
    digits(0, 9999, 4),
    digits(0, 13, 2),
    digits(0, 32, 2),
    fc.constantFrom(...SEPARATORS),
    digits(0, 25, 2),
    digits(0, 61, 2),
    digits(0, 62, 2),
    fraction,
    offset,
  )
  .map(([y, mo, d, sep, h, mi, s, f, z]) => `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${f}${z}`)
// A near-valid string with one character inserted, removed or replaced.
const mutated = fc
  .tuple(
    nearDateTime,
    fc.nat(),
    fc.constantFrom('insert', 'delete', 'replace'),
    fc.constantFrom(...SEPARATORS, '0', ':', '-', '.', '9', '+'),
  )
  .map(([s, at, how, c]) => {
    const i = at % (s.length + 1)
    if (how === 'insert') return s.slice(0, i) + c + s.slice(i)
    if (how === 'delete') return s.slice(0, i) + s.slice(i + 1)
    return s.slice(0, i) + c + s.slice(i + 1)
  })

t.test('isDateTime answers what ajv-formats answers', async (t) => {
  const agree = (s: string) => isDateTime(s) === oracle(s)
  t.doesNotThrow(() => fc.assert(fc.property(nearDateTime, agree), { numRuns: 30_000 }), 'near-valid strings')
  t.doesNotThrow(() => fc.assert(fc.property(mutated, agree), { numRuns: 30_000 }), 'one character off')
  t.doesNotThrow(() => fc.assert(fc.property(fc.string({ maxLength: 40 }), agree), { numRuns: 5_000 }), 'any string')
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.date({ noInvalidDate: true }), (d) => isDateTime(d.toISOString()) === oracle(d.toISOString())),
      ),
    'what Date prints',
  )
  // The cases that decide: the generators reach them, these say so by name.
  const cases: Array<[string, boolean]> = [
    ['2024-02-29T12:00:00Z', true],
    ['2023-02-29T12:00:00Z', false],
    ['1900-02-29T12:00:00Z', false],
    ['2000-02-29T12:00:00Z', true],
    ['2016-12-31T23:59:60Z', true],
    ['2016-12-31T23:59:60.999Z', true],
    ['2016-12-31T12:59:60Z', false],
    ['2017-01-01T05:29:60+05:30', true],
    ['2024-01-01T12:00:59.999999999999Z', true],
    ['2024-01-01T12:00:59.99999999999999999Z', false],
    ['2024-01-01 12:00:00Z', true],
    ['2024-01-01\u200012:00:00+0530', true],
    ['2024-01-01T12:00:00', false],
    ['2024-01-01T12:00:00.Z', false],
    ['2024-01-01T12:00:00+24:00', false],
    ['2024-01-01TT12:00:00Z', false],
    ['2024-01-01T12:00:00Z\n', false],
  ]
  for (const [s, want] of cases) {
    t.equal(oracle(s), want, `ajv-formats: ${JSON.stringify(s)}`)
    t.equal(isDateTime(s), want, `isDateTime: ${JSON.stringify(s)}`)
  }
})

t.test('canonicalInstantMs is Date.parse for the usual form, NaN for the rest', async (t) => {
  const canonical = fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 31 }),
      fc.integer({ min: 0, max: 23 }),
      fc.integer({ min: 0, max: 59 }),
      fc.integer({ min: 0, max: 59 }),
      fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,9}$/)),
    )
    .map(
      ([y, mo, d, h, mi, s, f]) =>
        `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${f}Z`,
    )
  // A day past its month's end (April 31) is NaN here: instantMs then asks Date.parse, which answers May 1.
  const realDay = (s: string) => {
    const [y, mo, d] = [Number(s.slice(0, 4)), Number(s.slice(5, 7)), Number(s.slice(8, 10))]
    return (
      d <=
      new Date(Date.UTC(2000, mo, 0)).getUTCDate() -
        (mo === 2 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 1 : 0)
    )
  }
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(canonical, (s) => {
          const ms = canonicalInstantMs(s)
          return instantMs(s) === Date.parse(s) && (realDay(s) ? ms === Date.parse(s) : Number.isNaN(ms))
        }),
        { numRuns: 30_000 },
      ),
    'every canonical string',
  )
  // Any other string (an offset, a lower-case t or z, a space, a field out of range): NaN here, so Date.parse decides.
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.oneof(nearDateTime, mutated), (s) => {
          const ms = canonicalInstantMs(s)
          return Number.isNaN(ms) || ms === Date.parse(s)
        }),
        { numRuns: 30_000 },
      ),
    'near-valid and one character off: NaN or Date.parse',
  )
  t.ok(Number.isNaN(canonicalInstantMs('2024-01-01T12:00:00+05:30')), 'an offset is not the usual form')
  t.equal(
    instantMs('2024-01-01T12:00:00+05:30'),
    Date.parse('2024-01-01T12:00:00+05:30'),
    'instantMs asks Date.parse then',
  )
  t.ok(Number.isNaN(canonicalInstantMs('2024-01-01T24:00:00Z')), 'hour 24 is left to Date.parse')
  t.ok(Number.isNaN(canonicalInstantMs('2000-01-01T00:00:00.0003000000Z')), 'so are 10 fraction digits')
  t.equal(instantMs('2000-01-01T00:00:00.0003000000Z'), Date.parse('2000-01-01T00:00:00.0003000000Z'))
  t.equal(
    canonicalInstantMs('2024-02-29T23:59:59.9999Z'),
    Date.parse('2024-02-29T23:59:59.999Z'),
    'truncated, not rounded',
  )
})

t.test('the body and query validators use it for date-time', async (t) => {
  const ajv = makeAjv(false)
  const check = ajv.compile({ type: 'string', format: 'date-time' })
  t.equal(check('2024-01-01T12:00:00Z'), true)
  t.equal(check('2024-02-30T12:00:00Z'), false)
  t.equal(check.errors?.[0]?.keyword, 'format', 'refused as a format error, as before')
  t.equal(ajv.formats['date-time'], isDateTime, 'the registered format is the fast one')
})
