import { createHash } from 'node:crypto'
import type { SampleRow } from '../measurement/repository.ts'

/** One type's samples in one UTC minute, all devices together. */
export interface MinuteAggregate {
  type: SampleRow['type']
  /** Start and end of the minute (RFC 3339, UTC). */
  start: string
  end: string
  count: number
  avg: number
  min: number
  max: number
  sum: number
}

/**
 * Per-minute aggregates of the export's sample rows, as they stream past. The rows come in (type,
 * timestamp, device) order, so one type's minute is a run of consecutive rows: only the current minute
 * is held in memory.
 */
export async function* perMinute(rows: AsyncIterable<SampleRow>): AsyncGenerator<MinuteAggregate> {
  let cur: { type: SampleRow['type']; minute: number; count: number; sum: number; min: number; max: number } | null =
    null
  const done = (c: NonNullable<typeof cur>): MinuteAggregate => ({
    type: c.type,
    start: new Date(c.minute).toISOString(),
    end: new Date(c.minute + 60_000).toISOString(),
    count: c.count,
    avg: c.sum / c.count,
    min: c.min,
    max: c.max,
    sum: c.sum,
  })
  for await (const r of rows) {
    const minute = Math.floor(Date.parse(r.timestamp) / 60_000) * 60_000
    if (cur && cur.type === r.type && cur.minute === minute) {
      cur.count++
      cur.sum += r.value
      cur.min = Math.min(cur.min, r.value)
      cur.max = Math.max(cur.max, r.value)
      continue
    }
    if (cur) yield done(cur)
    cur = { type: r.type, minute, count: 1, sum: r.value, min: r.value, max: r.value }
  }
  if (cur) yield done(cur)
}

/** A UUID (version 8, RFC 9562) named by its parts: the same record gets the same id in every export. */
export function stableUuid(...parts: string[]): string {
  const b = createHash('sha256').update(parts.join('\u0000')).digest()
  b[6] = (b[6] & 0x0f) | 0x80
  b[8] = (b[8] & 0x3f) | 0x80
  const h = b.subarray(0, 16).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

// Rows are gathered into chunks of about this size before they are written: fewer, larger writes.
export const CHUNK_BYTES = 64 * 1024

/** Joins small strings into chunks of about CHUNK_BYTES. */
export async function* chunked(parts: AsyncIterable<string>): AsyncGenerator<string> {
  let buf = ''
  for await (const p of parts) {
    buf += p
    if (buf.length >= CHUNK_BYTES) {
      yield buf
      buf = ''
    }
  }
  if (buf) yield buf
}
