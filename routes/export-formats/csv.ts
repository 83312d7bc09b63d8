import { once } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import yazl from 'yazl'
import type { Db } from '../../db/client.ts'
import { CATALOGUE, type MeasurementTypeName } from '../../db/schema/measurement-catalogue.ts'
import { exportRows as measurementRows } from '../measurement/repository.ts'
import { exportRows as sleepRows } from '../sleep/repository.ts'
import type { SleepSessionJson } from '../sleep/schemas.ts'
import { CHUNK_BYTES } from './minutes.ts'

/** Column-name suffix of each catalogue unit (units in the column names, in characters a header keeps). */
const UNIT_SUFFIX: Record<string, string> = {
  bpm: 'bpm',
  ms: 'ms',
  '°C': 'celsius',
  '%': 'percent',
  '/min': 'per_min',
  count: 'count',
  m: 'm',
  kcal: 'kcal',
  score: 'score',
  code: 'code',
}

export const measurementHeader = (type: MeasurementTypeName) =>
  `timestamp_utc,device_id,${type}_${UNIT_SUFFIX[CATALOGUE[type].unit] ?? 'value'}`

export const SLEEP_COLUMNS = [
  ['id', (s: SleepSessionJson) => s.id],
  ['date', (s) => s.date],
  ['kind', (s) => s.kind],
  ['device_id', (s) => s.device_id],
  ['start_utc', (s) => s.start],
  ['end_utc', (s) => s.end],
  ['sleep_onset_utc', (s) => s.sleep_onset],
  ['wake_utc', (s) => s.wake],
  ['in_bed_s', (s) => s.in_bed],
  ['asleep_s', (s) => s.asleep],
  ['awake_s', (s) => s.awake],
  ['unrecorded_s', (s) => s.unrecorded],
  ['light_s', (s) => s.light],
  ['deep_s', (s) => s.deep],
  ['rem_s', (s) => s.rem],
  ['latency_s', (s) => s.latency],
  ['efficiency_ratio', (s) => s.efficiency],
  ['heart_rate_avg_bpm', (s) => s.heart_rate_avg],
  ['heart_rate_lowest_bpm', (s) => s.heart_rate_lowest],
  ['hrv_rmssd_avg_ms', (s) => s.hrv_rmssd_avg],
  ['respiratory_rate_avg_per_min', (s) => s.respiratory_rate_avg],
] as const satisfies ReadonlyArray<readonly [string, (s: SleepSessionJson) => string | number | null]>

/**
 * One field of RFC 4180 CSV. Text that a spreadsheet would run as a formula (=, +, -, @ first) gets a
 * leading apostrophe (OWASP CSV injection); device ids are the only free text here.
 */
export function csvField(v: string | number | null): string {
  if (v === null) return ''
  if (typeof v === 'number') return String(v)
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

/** Writes text into an entry's stream, waiting while the zip has not taken what was written (back-pressure). */
class EntryWriter {
  buf = ''
  constructor(readonly stream: PassThrough) {}
  async line(text: string) {
    this.buf += `${text}\r\n`
    if (this.buf.length >= CHUNK_BYTES) await this.flush()
  }
  async flush() {
    if (this.buf && !this.stream.write(this.buf)) await once(this.stream, 'drain')
    this.buf = ''
  }
  async end() {
    await this.flush()
    this.stream.end()
  }
}

/**
 * A zip of CSV files, written while the rows are read: `<type>.csv` per measurement type with every raw
 * sample (timestamp, device, value with its unit in the column name) and `sleep_sessions.csv`. yazl reads
 * one entry at a time, so the next file's rows are read only once the previous file is in the zip.
 */
export function csvZip(db: Db, userId: string): Readable {
  const zip = new yazl.ZipFile()
  const output = zip.outputStream as unknown as Readable
  const streams: PassThrough[] = []
  // A client gone mid-download: the entry being written waits for a drain that never comes; end it.
  output.on('close', () => {
    for (const s of streams) if (!s.writableFinished) s.destroy(new Error('export download closed'))
  })
  const entry = (name: string) => {
    const stream = new PassThrough({ highWaterMark: CHUNK_BYTES })
    streams.push(stream)
    zip.addReadStream(stream, name)
    return new EntryWriter(stream)
  }
  ;(async function produce() {
    const file: { type?: string; out?: EntryWriter } = {}
    for await (const r of measurementRows(db, userId)) {
      if (file.type !== r.type || !file.out) {
        await file.out?.end()
        file.type = r.type
        file.out = entry(`${r.type}.csv`)
        await file.out.line(measurementHeader(r.type))
      }
      await file.out.line(`${r.timestamp},${csvField(r.device_id)},${r.value}`)
    }
    await file.out?.end()
    const sleep = entry('sleep_sessions.csv')
    await sleep.line(SLEEP_COLUMNS.map(([name]) => name).join(','))
    for await (const s of sleepRows(db, userId)) {
      await sleep.line(SLEEP_COLUMNS.map(([, get]) => csvField(get(s))).join(','))
    }
    await sleep.end()
    zip.end()
  })().catch((err: Error) => output.destroy(err))
  return output
}
