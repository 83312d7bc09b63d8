/**
 * The measurement types the API accepts: unit and physical range of each. A sample outside its range is
 * a sensor or transfer error, never a reading, so the whole batch it came in is refused.
 * Ranges are deliberately wider than healthy values (a bradycardic athlete, a fever) but narrower than
 * what a body can't produce.
 */
export interface MeasurementType {
  unit: string
  min: number
  max: number
  /** Only whole numbers are valid (counts, enum codes). */
  integer?: boolean
  /** Samples add up over time (steps in the interval since the previous sample): statistics report sums. */
  additive?: boolean
  /** The meaning of each code of an enum-valued type. */
  codes?: Record<string, string>
  description: string
}

export const SLEEP_STAGES = { 0: 'awake', 1: 'light', 2: 'deep', 3: 'rem' } as const

export const CATALOGUE = {
  heart_rate: { unit: 'bpm', min: 20, max: 250, description: 'Heart rate, beats per minute.' },
  hrv_rmssd: {
    unit: 'ms',
    min: 1,
    max: 300,
    description: 'Heart rate variability, root mean square of successive RR differences.',
  },
  hrv_sdnn: {
    unit: 'ms',
    min: 1,
    max: 400,
    description: 'Heart rate variability, standard deviation of RR intervals.',
  },
  skin_temperature: { unit: '°C', min: 20, max: 45, description: 'Skin temperature at the wrist.' },
  spo2: { unit: '%', min: 50, max: 100, description: 'Blood oxygen saturation.' },
  respiratory_rate: { unit: '/min', min: 2, max: 60, description: 'Breaths per minute.' },
  steps: {
    unit: 'count',
    min: 0,
    max: 100000,
    integer: true,
    additive: true,
    description: 'Steps taken since the previous steps sample of the device.',
  },
  distance: {
    unit: 'm',
    min: 0,
    max: 100000,
    additive: true,
    description: 'Distance covered since the previous distance sample of the device.',
  },
  active_energy: {
    unit: 'kcal',
    min: 0,
    max: 10000,
    additive: true,
    description: 'Active energy burned since the previous active_energy sample of the device.',
  },
  stress: { unit: 'score', min: 0, max: 100, description: 'Stress score, 0 (none) to 100 (highest).' },
  sleep_stage: {
    unit: 'code',
    min: 0,
    max: 3,
    integer: true,
    codes: SLEEP_STAGES,
    description: 'Sleep stage from this timestamp on: 0 awake, 1 light, 2 deep, 3 REM.',
  },
} as const satisfies Record<string, MeasurementType>

export type MeasurementTypeName = keyof typeof CATALOGUE
export const TYPE_NAMES = Object.keys(CATALOGUE) as MeasurementTypeName[]
