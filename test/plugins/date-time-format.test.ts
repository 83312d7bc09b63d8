import { createRequire } from 'node:module'
import fc from 'fast-check'
import t from 'tap'
import { canonicalInstantMs, instantDate, instantMs, isDateTime } from '../../plugins/date-time-format.ts'
import { makeAjv } from '../../plugins/input-validation.ts'
import { fixPropertySeed } from '../helpers/property-seed.ts'

fixPropertySeed(20_261_203)

// The oracle: ajv-formats' own full `date-time`, which plugins/date-time-format.ts replaces for speed.
const formats = createRequire(import.meta.url)('ajv-formats/dist/formats.js') as {
  fullFormats: Record<string, { validate: (s: string) => boolean }>
}
const oracle = formats.fullFormats['date-time'].validate

const pad = (n: number, width: number) => String(n).padStart(width, '0')
const digits = (min: number, max: number, width: number) => fc.integer({ min, max }).map((n) => pad(n, width))
// Every character JavaScript's \s matches, the letters that split or end a date-time, and near misses.
const ACCEPTED_SEPARATORS = [
  ...['T', 't', ' ', '\t', '\n', '\v', '\f', '\r', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029'],
  ...['\u202f', '\u205f', '\u3000', '\ufeff'],
]
const SEPARATORS = [...ACCEPTED_SEPARATORS, 'x', '_', '\u0000', '\u00e9', '\u200b', '\u180e']
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
/** A date-time of its nine fields, in order (the fraction with its point, if any). */
const joined = ([y, mo, d, sep, h, mi, s, f, z]: string[]) => `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${f}${z}`
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
  .map(joined)
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
    ['2016-12-31T24:59:00+01:00', true], // the leap-second rule: 23:59 UTC, whatever its seconds
    ['2016-12-31T23:60:00+00:01', true],
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

const DATE_TIME_PARTS = /^(\d{4}-\d{2}-\d{2}).(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:[Zz]|([+-]\d{2}):?(\d{2})?)$/su

/**
 * Date.parse of the date-time rewritten in the one form it reads right: `T`, `Z` or `±hh:mm`, and the fraction
 * cut to `digits` digits (none: dropped).
 */
function parsedAs(s: string, digits: number): number {
  const m = DATE_TIME_PARTS.exec(s)
  if (!m) return Number.NaN
  const [, date, time, fraction, hours, minutes] = m
  const cut = fraction && digits > 0 ? `.${fraction.slice(0, digits)}` : ''
  return Date.parse(`${date}T${time}${cut}${hours === undefined ? 'Z' : `${hours}:${minutes ?? '00'}`}`)
}

/**
 * The instant by another road: the whole seconds by Date.parse (parsedAs), the fraction's milliseconds by
 * BigInt division, which truncates. NaN for the leap second, as Date.parse answers it, and for hour 24 and
 * minute 60, which RFC 3339 has not (Date.parse reads 24:00:00 as the next midnight).
 */
function expectedMs(s: string): number {
  const parts = DATE_TIME_PARTS.exec(s)
  if (parts && (Number(parts[2].slice(0, 2)) > 23 || Number(parts[2].slice(3, 5)) > 59)) return Number.NaN
  const fraction = parts?.[3]
  const ms = fraction ? Number((BigInt(fraction) * 1000n) / 10n ** BigInt(fraction.length)) : 0
  return parsedAs(s, 0) + ms
}

/** The instant of an accepted date-time is expectedMs; anything else has none. */
const rightInstant = (s: string) =>
  isDateTime(s) ? Object.is(instantMs(s), expectedMs(s)) : Number.isNaN(instantMs(s))

t.test('canonicalInstantMs is the instant of the usual form, NaN for the rest', async (t) => {
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
  // A day past its month's end (April 31) is no date-time: NaN, where Date.parse would answer May 1.
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(canonical, (s) => {
          const ms = canonicalInstantMs(s)
          return isDateTime(s) ? ms === Date.parse(s) && instantMs(s) === ms : Number.isNaN(ms + instantMs(s))
        }),
        { numRuns: 30_000 },
      ),
    'up to 9 fraction digits: what Date.parse answers',
  )
  // Any other string (an offset, a lower-case t or z, a space, a field out of range): NaN here, instantMs decides.
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.oneof(nearDateTime, mutated), (s) => {
          const ms = canonicalInstantMs(s)
          return (Number.isNaN(ms) || ms === expectedMs(s)) && rightInstant(s)
        }),
        { numRuns: 30_000 },
      ),
    'near-valid and one character off: the instant of each accepted one, NaN for the rest',
  )
  t.ok(Number.isNaN(canonicalInstantMs('2024-01-01T12:00:00+05:30')), 'an offset is not the usual form')
  t.equal(instantMs('2024-01-01T12:00:00+05:30'), Date.parse('2024-01-01T06:30:00Z'), 'instantMs reads it')
  for (const s of ['2016-12-31T24:59:00.999999999999+01', '2016-12-31T23:60:00+00:01', '2016-12-31T24:00:00+00:01']) {
    t.ok(Number.isNaN(instantMs(s)), `hour 24 or minute 60 has no instant: ${s}`)
  }
  t.ok(Number.isNaN(instantMs('2024-01-01T24:00:00Z')), 'hour 24 is no date-time')
  t.ok(Number.isNaN(instantMs('2024-04-31T12:00:00Z')), 'nor is April 31 (Date.parse: May 1)')
  t.equal(
    canonicalInstantMs('2024-02-29T23:59:59.9999Z'),
    Date.parse('2024-02-29T23:59:59.999Z'),
    'truncated, not rounded',
  )
})

t.test('any number of fraction digits is truncated to the millisecond, in every form', async (t) => {
  // Date.parse on Node 20 reads 10 or more digits wrongly (the first: 3 ms, the second: 123); by name.
  const named: Array<[string, string]> = [
    ['2024-01-01T00:00:00.0003000000Z', '2024-01-01T00:00:00.000Z'],
    ['2024-01-01T00:00:00.0123456789Z', '2024-01-01T00:00:00.012Z'],
    ['2024-01-01T00:00:00.1234567890Z', '2024-01-01T00:00:00.123Z'],
    ['2024-01-01T00:00:00.00100000000Z', '2024-01-01T00:00:00.001Z'],
    ['2024-01-01T00:00:00.000000000000000000000000000001Z', '2024-01-01T00:00:00.000Z'],
    ['2024-01-01T00:00:00.999999999999999999999999999999Z', '2024-01-01T00:00:00.999Z'],
    ['2024-01-01T00:00:00.0000000000Z', '2024-01-01T00:00:00.000Z'],
    ['2024-01-01T01:00:00.0123456789+01:00', '2024-01-01T00:00:00.012Z'],
    ['2024-01-01T01:00:00.0123456789+0100', '2024-01-01T00:00:00.012Z'],
    ['2024-01-01T01:00:00.0123456789+01', '2024-01-01T00:00:00.012Z'],
    ['2023-12-31t19:30:00.0123456789-04:30', '2024-01-01T00:00:00.012Z'],
    ['2024-01-01 00:00:00.0123456789z', '2024-01-01T00:00:00.012Z'],
    ['2024-01-01\u202800:00:00.5+00', '2024-01-01T00:00:00.500Z'],
    ['2016-12-31T23:59:59.99999999999999999999Z', '2016-12-31T23:59:59.999Z'],
  ]
  // U+2028 in an assertion's name would end its TAP line.
  const shown = (s: string) =>
    JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const [s, want] of named) {
    t.equal(isDateTime(s), true, `${shown(s)} is a date-time`)
    t.equal(new Date(instantMs(s)).toISOString(), want, shown(s))
    t.equal(instantDate(s).toISOString(), want)
  }

  const fractions = fc.oneof(
    fc.stringMatching(/^\d{10,30}$/),
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.stringMatching(/^\d{1,10}$/)).map(([n, d]) => '0'.repeat(n) + d),
    fc.integer({ min: 10, max: 30 }).map((n) => '0'.repeat(n)),
    fc.integer({ min: 10, max: 30 }).map((n) => '9'.repeat(n)),
    fc.stringMatching(/^\d{1,9}$/),
  )
  const offsets = fc.oneof(
    fc.constantFrom('Z', 'z', '+00', '-00:00'),
    fc
      .tuple(fc.constantFrom('+', '-'), digits(0, 23, 2), fc.constantFrom(':', ''), digits(0, 59, 2))
      .map(([sign, h, colon, m]) => `${sign}${h}${colon}${m}`),
    fc.tuple(fc.constantFrom('+', '-'), digits(0, 23, 2)).map(([sign, h]) => `${sign}${h}`),
  )
  const longFraction = fc
    .tuple(
      digits(1900, 2199, 4),
      digits(1, 12, 2),
      digits(1, 28, 2),
      fc.constantFrom(...ACCEPTED_SEPARATORS),
      digits(0, 23, 2),
      digits(0, 59, 2),
      fc.oneof(
        { arbitrary: digits(0, 59, 2), weight: 8 },
        { arbitrary: fc.constant('59'), weight: 1 },
        { arbitrary: fc.constant('60'), weight: 1 },
      ),
      fractions.map((f) => `.${f}`),
      offsets,
    )
    .map(joined)
  t.doesNotThrow(
    () => fc.assert(fc.property(longFraction, rightInstant), { numRuns: 50_000 }),
    '10-30 digits, leading zeros, all zeros, all nines; every separator and offset form',
  )
  // Most of them are date-times (the rest: nines that round up to second 60, a second 60 off 23:59 UTC).
  t.ok(fc.sample(longFraction, 1000).filter(isDateTime).length > 800, 'the generator makes date-times')
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(longFraction, (s) => !isDateTime(s) || Object.is(instantMs(s), parsedAs(s, 3))),
        { numRuns: 20_000 },
      ),
    'the other oracle: Date.parse of the string cut to three fraction digits',
  )

  // The leap second keeps no instant (the x-window check refuses it by that NaN), whatever its fraction.
  for (const s of [
    '2016-12-31T23:59:60Z',
    '2016-12-31T23:59:60.0003000000Z',
    '2016-12-31T23:59:60.99999999999Z',
    '2017-01-01T05:29:60.0123456789+05:30',
    '2017-01-01T05:29:60+0530',
    '2016-12-31T23:59:60-00',
  ]) {
    t.equal(isDateTime(s), true, `${s} is a date-time`)
    t.ok(Number.isNaN(instantMs(s)), `${s}: no instant`)
  }
  t.ok(Number.isNaN(instantMs('2024-01-01T12:00:59.99999999999999999Z')), 'rounding to second 60 off 23:59: refused')
})

t.test('the body and query validators use it for date-time', async (t) => {
  const ajv = makeAjv(false)
  const check = ajv.compile({ type: 'string', format: 'date-time' })
  t.equal(check('2024-01-01T12:00:00Z'), true)
  t.equal(check('2024-02-30T12:00:00Z'), false)
  t.equal(check.errors?.[0]?.keyword, 'format', 'refused as a format error, as before')
  t.equal(ajv.formats['date-time'], isDateTime, 'the registered format is the fast one')
})
