import type { Db } from '../../db/client.ts'
import { CATALOGUE, type MeasurementType } from '../../db/schema/measurement-catalogue.ts'
import { exportRows as measurementRows } from '../measurement/repository.ts'
import { exportRows as sleepRows } from '../sleep/repository.ts'
import type { SleepSessionJson } from '../sleep/schemas.ts'
import { OMH_SCHEMAS } from './codes.ts'
import { type MinuteAggregate, chunked, perMinute, stableUuid } from './minutes.ts'

/** The header every data point carries (Open mHealth header-1.2). */
function header(id: string, userId: string, createdAt: string, name: string, version: string) {
  return {
    id,
    creation_date_time: createdAt,
    schema_id: { namespace: 'omh', name, version },
    acquisition_provenance: { source_name: 'NOWATCH', modality: 'sensed' },
    user_id: userId,
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000

/** A minute of one type as a data point: the mean (descriptive_statistic average), or the total of additive types. */
export function minuteDataPoint(userId: string, createdAt: string, m: MinuteAggregate) {
  const schema = OMH_SCHEMAS[m.type]
  if (!schema) return null
  const spec: MeasurementType = CATALOGUE[m.type]
  return {
    header: header(stableUuid(userId, m.type, m.start), userId, createdAt, schema.name, schema.version),
    body: {
      [schema.property]: { value: spec.additive ? m.sum : m.avg, unit: schema.unit },
      effective_time_frame: { time_interval: { start_date_time: m.start, end_date_time: m.end } },
      ...(spec.additive ? {} : { descriptive_statistic: 'average' }),
      ...schema.extra,
    },
  }
}

/** A sleep session as omh:sleep-episode:1.1: its time frame runs from sleep onset to the final awakening. */
export function sleepDataPoint(userId: string, createdAt: string, s: SleepSessionJson) {
  const onsetToWake = (Date.parse(s.wake) - Date.parse(s.sleep_onset)) / 1000
  const afterWake = (Date.parse(s.end) - Date.parse(s.wake)) / 1000
  const min = (seconds: number) => ({ value: round(seconds / 60), unit: 'min' })
  return {
    header: header(s.id, userId, createdAt, 'sleep-episode', '1.1'),
    body: {
      effective_time_frame: { time_interval: { start_date_time: s.sleep_onset, end_date_time: s.wake } },
      latency_to_sleep_onset: min(s.latency),
      latency_to_arising: min(afterWake),
      total_sleep_time: min(s.asleep),
      wake_after_sleep_onset: min(Math.max(0, s.awake - s.latency - afterWake)),
      is_main_sleep: s.kind === 'main',
      sleep_maintenance_efficiency_percentage: {
        value: onsetToWake > 0 ? round((100 * s.asleep) / onsetToWake) : 0,
        unit: '%',
      },
    },
  }
}

async function* parts(db: Db, userId: string): AsyncGenerator<string> {
  const createdAt = new Date().toISOString()
  let first = true
  yield '['
  for await (const m of perMinute(measurementRows(db, userId))) {
    const point = minuteDataPoint(userId, createdAt, m)
    if (!point) continue
    yield (first ? '' : ',') + JSON.stringify(point)
    first = false
  }
  for await (const s of sleepRows(db, userId)) {
    yield (first ? '' : ',') + JSON.stringify(sleepDataPoint(userId, createdAt, s))
    first = false
  }
  yield ']'
}

/** The user's data as a JSON array of Open mHealth data points, as text chunks. */
export function omhDataPoints(db: Db, userId: string): AsyncGenerator<string> {
  return chunked(parts(db, userId))
}
