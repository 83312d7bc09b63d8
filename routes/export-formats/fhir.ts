import { randomUUID } from 'node:crypto'
import type { Db } from '../../db/client.ts'
import { CATALOGUE, type MeasurementType } from '../../db/schema/measurement-catalogue.ts'
import { exportRows as measurementRows } from '../measurement/repository.ts'
import { exportRows as sleepRows } from '../sleep/repository.ts'
import type { SleepSessionJson } from '../sleep/schemas.ts'
import { createUserRepository } from '../user/repository.ts'
import { FHIR_CODES, NOWATCH_CODE_SYSTEM, OBSERVATION_CATEGORY, SLEEP_CODE, UCUM } from './codes.ts'
import { type MinuteAggregate, chunked, perMinute, stableUuid } from './minutes.ts'

const CATEGORY_DISPLAY = { 'vital-signs': 'Vital Signs', activity: 'Activity' } as const

function category(code: keyof typeof CATEGORY_DISPLAY) {
  return [{ coding: [{ system: OBSERVATION_CATEGORY, code, display: CATEGORY_DISPLAY[code] }] }]
}

const quantity = (value: number, unit: string, code: string) => ({ value, unit, system: UCUM, code })

/**
 * One Observation per type and minute: the raw samples (up to 60 a minute at 1 Hz) as their per-minute
 * aggregate, with `effectivePeriod` the minute. The value is the minute's mean, or its total for additive
 * types (steps, energy, distance). Chosen over `valueSampledData`: the vital-signs profile asks for
 * `valueQuantity`, and that is what clinical systems read; the raw samples remain in format=json and csv.
 */
export function minuteObservation(userId: string, m: MinuteAggregate) {
  const code = FHIR_CODES[m.type]
  if (!code) return null
  const spec: MeasurementType = CATALOGUE[m.type]
  return {
    fullUrl: `urn:uuid:${stableUuid(userId, m.type, m.start)}`,
    resource: {
      resourceType: 'Observation',
      id: stableUuid(userId, m.type, m.start),
      status: 'final',
      category: category(code.category),
      code: { coding: [{ system: code.system, code: code.code, display: code.display }], text: code.display },
      subject: { reference: `urn:uuid:${userId}` },
      effectivePeriod: { start: m.start, end: m.end },
      valueQuantity: quantity(spec.additive ? m.sum : m.avg, code.unit, code.ucum),
      ...(code.code === '8310-5' ? { bodySite: { text: 'Wrist (skin temperature)' } } : {}),
    },
  }
}

const minutes = (seconds: number) => Math.round((seconds / 60) * 1000) / 1000

/** A sleep session: time asleep as the value, the stages, latency and efficiency as components. */
export function sleepObservation(userId: string, s: SleepSessionJson) {
  const component = (code: string, display: string, value: ReturnType<typeof quantity>) => ({
    code: { coding: [{ system: NOWATCH_CODE_SYSTEM, code, display }] },
    valueQuantity: value,
  })
  return {
    fullUrl: `urn:uuid:${s.id}`,
    resource: {
      resourceType: 'Observation',
      id: s.id,
      status: 'final',
      category: category('activity'),
      code: { coding: [{ ...SLEEP_CODE }], text: SLEEP_CODE.display },
      subject: { reference: `urn:uuid:${userId}` },
      effectivePeriod: { start: s.start, end: s.end },
      valueQuantity: quantity(minutes(s.asleep), 'min', 'min'),
      component: [
        component('sleep_light', 'Light sleep', quantity(minutes(s.light), 'min', 'min')),
        component('sleep_deep', 'Deep sleep', quantity(minutes(s.deep), 'min', 'min')),
        component('sleep_rem', 'REM sleep', quantity(minutes(s.rem), 'min', 'min')),
        component('sleep_awake', 'Awake in bed', quantity(minutes(s.awake), 'min', 'min')),
        component('sleep_latency', 'Sleep latency', quantity(minutes(s.latency), 'min', 'min')),
        component('sleep_efficiency', 'Sleep efficiency', quantity(Math.round(s.efficiency * 10000) / 100, '%', '%')),
      ],
    },
  }
}

async function* parts(db: Db, userId: string): AsyncGenerator<string> {
  const user = await createUserRepository(db).findById(userId)
  const patient = {
    fullUrl: `urn:uuid:${userId}`,
    resource: {
      resourceType: 'Patient',
      id: userId,
      ...(user?.firstName || user?.lastName
        ? {
            name: [
              {
                ...(user.lastName ? { family: user.lastName } : {}),
                ...(user.firstName ? { given: [user.firstName] } : {}),
              },
            ],
          }
        : {}),
      ...(user?.sex ? { gender: user.sex } : {}),
      ...(user?.dateOfBirth ? { birthDate: user.dateOfBirth } : {}),
    },
  }
  yield `{"resourceType":"Bundle","id":${JSON.stringify(randomUUID())},"type":"collection","timestamp":${JSON.stringify(new Date().toISOString())},"entry":[${JSON.stringify(patient)}`
  for await (const m of perMinute(measurementRows(db, userId))) {
    const entry = minuteObservation(userId, m)
    if (entry) yield `,${JSON.stringify(entry)}`
  }
  for await (const s of sleepRows(db, userId)) yield `,${JSON.stringify(sleepObservation(userId, s))}`
  yield ']}'
}

/** The FHIR R4 Bundle (type collection) of the user's Patient and Observations, as text chunks. */
export function fhirBundle(db: Db, userId: string): AsyncGenerator<string> {
  return chunked(parts(db, userId))
}
