/**
 * One byte range of a `Range` header (RFC 9110 §14.2). Multiple ranges are not served as
 * multipart/byteranges: the whole file is sent instead, which the RFC allows. Returns
 * `null` (send the whole file), `'unsatisfiable'` (416), or the inclusive range.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | 'unsatisfiable' {
  if (header === undefined) return null
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header)
  // Another unit is not ours to understand: ignore it, as the RFC says.
  if (!m) return null
  const specs = m[1].split(',').map((s) => s.trim())
  if (specs.length !== 1) return null
  const spec = /^(\d*)-(\d*)$/.exec(specs[0])
  if (!spec || (spec[1] === '' && spec[2] === '')) return 'unsatisfiable'
  if (spec[1] === '') {
    // A suffix: the last N bytes.
    const n = Number(spec[2])
    if (n === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(spec[1])
  const end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1)
  if (!Number.isSafeInteger(start) || start >= size || (spec[2] !== '' && Number(spec[2]) < start)) {
    return 'unsatisfiable'
  }
  return { start, end }
}
