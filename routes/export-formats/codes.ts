import type { MeasurementTypeName } from '../../db/schema/measurement-catalogue.ts'

/**
 * How each measurement type is written in the standard formats.
 *
 * FHIR: LOINC codes where LOINC has the concept (the vital-signs profile's codes for heart rate, SpO2,
 * body temperature and respiratory rate), UCUM units. LOINC has no code for RMSSD (80404-7 is the SDNN of
 * R-R intervals, used for hrv_sdnn), nor for a stress score or a distance walked: those, and the sleep
 * sessions, are coded in NOWATCH_CODE_SYSTEM with the API's own type names, so a reader can map them and
 * never mistakes them for a LOINC concept they are not.
 *
 * Open mHealth: the schema of each type where Open mHealth has one; the others (hrv_rmssd, hrv_sdnn, distance,
 * stress) have no OMH schema and are left out of format=omh (they are in json and csv).
 */
export const NOWATCH_CODE_SYSTEM = 'urn:nowatch:fhir:measurement-type'
export const LOINC = 'http://loinc.org'
export const UCUM = 'http://unitsofmeasure.org'
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'

export interface FhirCode {
  system: string
  code: string
  display: string
  category: 'vital-signs' | 'activity'
  /** UCUM code and its human-readable unit. */
  ucum: string
  unit: string
}

export const FHIR_CODES: Partial<Record<MeasurementTypeName, FhirCode>> = {
  heart_rate: {
    system: LOINC,
    code: '8867-4',
    display: 'Heart rate',
    category: 'vital-signs',
    ucum: '/min',
    unit: 'beats/minute',
  },
  spo2: {
    system: LOINC,
    code: '59408-5',
    display: 'Oxygen saturation in Arterial blood by Pulse oximetry',
    category: 'vital-signs',
    ucum: '%',
    unit: '%',
  },
  skin_temperature: {
    system: LOINC,
    code: '8310-5',
    display: 'Body temperature',
    category: 'vital-signs',
    ucum: 'Cel',
    unit: 'C',
  },
  respiratory_rate: {
    system: LOINC,
    code: '9279-1',
    display: 'Respiratory rate',
    category: 'vital-signs',
    ucum: '/min',
    unit: 'breaths/minute',
  },
  steps: {
    system: LOINC,
    code: '55423-8',
    display: 'Number of steps in unspecified time Pedometer',
    category: 'activity',
    ucum: '{steps}',
    unit: 'steps',
  },
  active_energy: {
    system: LOINC,
    code: '41981-2',
    display: 'Calories burned',
    category: 'activity',
    ucum: 'kcal',
    unit: 'kcal',
  },
  hrv_sdnn: {
    system: LOINC,
    code: '80404-7',
    display: 'R-R interval.standard deviation (Heart rate variability)',
    category: 'vital-signs',
    ucum: 'ms',
    unit: 'ms',
  },
  hrv_rmssd: {
    system: NOWATCH_CODE_SYSTEM,
    code: 'hrv_rmssd',
    display: 'Heart rate variability, root mean square of successive RR differences',
    category: 'vital-signs',
    ucum: 'ms',
    unit: 'ms',
  },
  distance: {
    system: NOWATCH_CODE_SYSTEM,
    code: 'distance',
    display: 'Distance covered',
    category: 'activity',
    ucum: 'm',
    unit: 'm',
  },
  stress: {
    system: NOWATCH_CODE_SYSTEM,
    code: 'stress',
    display: 'Stress score (0..100)',
    category: 'vital-signs',
    ucum: '{score}',
    unit: 'score',
  },
  // sleep_stage: exported as sleep sessions (below), not as per-minute means of stage codes.
}

export const SLEEP_CODE = {
  system: NOWATCH_CODE_SYSTEM,
  code: 'sleep_session',
  display: 'Sleep session: time asleep',
} as const

/** The Open mHealth schema of each type that has one, the body property holding the value, and its unit. */
export interface OmhSchema {
  name: string
  version: string
  property: string
  unit: string
  /** Extra body fields the schema defines for this source. */
  extra?: Record<string, string>
}

export const OMH_SCHEMAS: Partial<Record<MeasurementTypeName, OmhSchema>> = {
  heart_rate: { name: 'heart-rate', version: '2.0', property: 'heart_rate', unit: 'beats/min' },
  spo2: {
    name: 'oxygen-saturation',
    version: '2.0',
    property: 'oxygen_saturation',
    unit: '%',
    extra: { system: 'peripheral capillary', measurement_method: 'pulse oximetry' },
  },
  skin_temperature: {
    name: 'body-temperature',
    version: '3.0',
    property: 'body_temperature',
    unit: 'C',
    extra: { measurement_location: 'wrist' },
  },
  respiratory_rate: { name: 'respiratory-rate', version: '2.0', property: 'respiratory_rate', unit: 'breaths/min' },
  steps: { name: 'step-count', version: '3.0', property: 'step_count', unit: 'steps' },
  active_energy: { name: 'calories-burned', version: '2.0', property: 'kcal_burned', unit: 'kcal' },
}
