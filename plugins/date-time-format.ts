/*
 * The `date-time` format, answering exactly what ajv-formats' full `date-time` answers (RFC 3339 with a
 * required offset, real calendar days, the leap second only at 23:59 UTC), in one pass over the character codes.
 * ajv-formats splits the string with a regular expression and runs two more with captures on each part: for
 * a 10,000-sample upload that was a tenth of the server's time (issue 23). Its function stays the oracle:
 * test/plugins/date-time-format.test.ts compares the two on generated and mutated strings.
 * The same module turns an accepted string into its instant (instantMs), so that what the format accepts and
 * what the server stores are one reading of RFC 3339 (https://www.rfc-editor.org/rfc/rfc3339#section-5.6).
 */

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
/** Fraction digits up to which ss.fff with ss <= 59 is below 60 as a double (15 significant digits). */
const EXACT_FRACTION_DIGITS = 12

/** Two ASCII digits at `i` as a number, or -1. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48
  const b = s.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)

/**
 * The characters JavaScript's `\s` matches (ajv-formats splits date and time at `t` or `\s`): the separator
 * may be any of them, and one anywhere else splits the string into more than two parts.
 */
function isSeparator(c: number): boolean {
  if (c === 0x54 || c === 0x74 || c === 0x20) return true // T t space
  if (c >= 0x09 && c <= 0x0d) return true
  if (c < 0xa0) return false
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  )
}

/** `YYYY-MM-DD` at the start of `s` (its first 10 characters), a real calendar day. */
function isDate(s: string): boolean {
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d) return false
  const hi = two(s, 0)
  const lo = two(s, 2)
  const month = two(s, 5)
  const day = two(s, 8)
  if (hi < 0 || lo < 0 || month < 1 || month > 12 || day < 1) return false
  return day <= (month === 2 && isLeapYear(hi * 100 + lo) ? 29 : DAYS[month])
}

/** `hh:mm:ss[.f+](Z|±hh[[:]mm])` from `p` to the end of `s`, as ajv-formats' strict time checks it. */
function isTime(s: string, p: number): boolean {
  const hr = two(s, p)
  const min = two(s, p + 3)
  const whole = two(s, p + 6)
  if (hr < 0 || min < 0 || whole < 0 || s.charCodeAt(p + 2) !== 0x3a || s.charCodeAt(p + 5) !== 0x3a) return false
  const secStart = p + 6
  let i = p + 8
  if (s.charCodeAt(i) === 0x2e) {
    const first = i + 1
    i = first
    while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++
    if (i === first) return false
  }
  const fractionDigits = i > p + 8 ? i - p - 9 : 0
  const secEnd = i
  let sign = 1
  let tzH = 0
  let tzM = 0
  const c = s.charCodeAt(i)
  if (c === 0x5a || c === 0x7a) {
    if (i + 1 !== s.length) return false
  } else if (c === 0x2b || c === 0x2d) {
    sign = c === 0x2d ? -1 : 1
    tzH = two(s, i + 1)
    if (tzH < 0) return false
    const rest = s.length - (i + 3)
    if (rest === 2) tzM = two(s, i + 3)
    else if (rest === 3 && s.charCodeAt(i + 3) === 0x3a) tzM = two(s, i + 4)
    else if (rest !== 0) return false
    if (tzM < 0) return false
  } else return false
  if (tzH > 23 || tzM > 59) return false
  // ss.fff as a double, as ajv-formats reads it: a long fraction may round up to 60 (or 61). A short one
  // cannot, so its whole seconds decide both comparisons below.
  const sec = fractionDigits <= EXACT_FRACTION_DIGITS ? whole : Number(s.slice(secStart, secEnd))
  if (hr <= 23 && min <= 59 && sec < 60) return true
  // The leap second: 23:59:60 UTC only.
  const utcMin = min - tzM * sign
  const utcHr = hr - tzH * sign - (utcMin < 0 ? 1 : 0)
  return (utcHr === 23 || utcHr === -1) && (utcMin === 59 || utcMin === -1) && sec < 61
}

/** True where ajv-formats' full `date-time` is true. */
export function isDateTime(s: string): boolean {
  if (s.length < 20 || !isSeparator(s.charCodeAt(10))) return false
  return isDate(s) && isTime(s, 11)
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468
}

/**
 * The milliseconds of the fraction whose first digit is at `first`, truncated (`.0129` is 12): the rule
 * Date.parse applies up to 9 digits and RFC 3339 leaves to the reader (it allows any number). `end` is past the
 * last digit.
 */
function fractionMs(s: string, first: number, end: number): number {
  let ms = 0
  for (let i = first; i < first + 3; i++) ms = ms * 10 + (i < end ? s.charCodeAt(i) - 48 : 0)
  return ms
}

/** The UTC instant of the date at 0 and the time fields at 11 (all in range), before its offset. */
function localMs(s: string, sec: number, ms: number): number {
  const day = daysFromCivil(two(s, 0) * 100 + two(s, 2), two(s, 5), two(s, 8))
  return day * 86_400_000 + two(s, 11) * 3_600_000 + two(s, 14) * 60_000 + sec * 1000 + ms
}

/**
 * The instant of the form every client sends, `YYYY-MM-DDTHH:MM:SS[.f]Z` with fields in range (a real day,
 * hour 0-23, second 0-59) and at most 12 fraction digits (past 12, ss.f read as a double may round up to 60,
 * which isDateTime decides on), computed from its fields; NaN for any other string (instantMs then asks
 * isDateTime and reads the fields itself).
 */
export function canonicalInstantMs(s: string): number {
  const n = s.length
  if (n < 20 || s.charCodeAt(10) !== 0x54 || s.charCodeAt(n - 1) !== 0x5a) return Number.NaN
  if (!isDate(s) || s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return Number.NaN
  const hr = two(s, 11)
  const min = two(s, 14)
  const sec = two(s, 17)
  if (hr < 0 || hr > 23 || min < 0 || min > 59 || sec < 0 || sec > 59) return Number.NaN
  if (n > 20) {
    if (s.charCodeAt(19) !== 0x2e || n < 22 || n > 21 + EXACT_FRACTION_DIGITS) return Number.NaN
    for (let i = 20; i < n - 1; i++) {
      const d = s.charCodeAt(i) - 48
      if (d < 0 || d > 9) return Number.NaN
    }
  }
  return localMs(s, sec, n > 20 ? fractionMs(s, 20, n - 1) : 0)
}

/**
 * The instant of a string isDateTime accepts, in ms since the epoch: the fraction truncated to milliseconds
 * whatever its length, any separator, `Z`/`z` or an offset `±hh:mm`, `±hhmm`, `±hh`. NaN for the leap second
 * (second 60: JavaScript's Date cannot hold it, and the `x-window` check refuses it by this NaN), for hour 24
 * and minute 60 (which the format lets through with the leap second) and for any string that is not a
 * date-time. Every client-supplied date-time becomes an instant here, never through Date.parse: V8 (Node 20)
 * reads 10 or more fraction digits wrongly ('.0003000000' as 3 ms, '.0123456789' as 123) and refuses `+hh` and
 * the U+2028/U+2029 separators, all of which RFC 3339 or ajv-formats accept.
 */
export function instantMs(s: string): number {
  const canonical = canonicalInstantMs(s)
  if (!Number.isNaN(canonical) || !isDateTime(s)) return canonical
  // Every field is in place now. ajv-formats' leap-second rule (23:59:60 UTC) also lets through hour 24 and
  // minute 60 at an offset that brings them to 23:59 UTC ('24:59:00+01', '23:60:00+00:01'): RFC 3339 has no
  // such time, so it has no instant either, like the leap second itself.
  const sec = two(s, 17)
  if (sec === 60 || two(s, 11) > 23 || two(s, 14) > 59) return Number.NaN
  let i = 19
  let ms = 0
  if (s.charCodeAt(i) === 0x2e) {
    const first = ++i
    while (s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++
    ms = fractionMs(s, first, i)
  }
  const c = s.charCodeAt(i)
  const offsetMin =
    c === 0x2b || c === 0x2d
      ? (c === 0x2d ? -1 : 1) * (two(s, i + 1) * 60 + (s.length === i + 3 ? 0 : two(s, s.length - 2)))
      : 0
  return localMs(s, sec, ms) - offsetMin * 60_000
}

/** instantMs as a Date: what a client's date-time becomes before it meets the database. */
export function instantDate(s: string): Date {
  return new Date(instantMs(s))
}
