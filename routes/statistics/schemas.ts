import { type TSchema, Type } from '@sinclair/typebox'
import { DateSchema } from '../common.ts'
import { RESTING_WINDOW_MIN_MINUTES } from '../measurement/repository.ts'
import { STATISTIC_KEYS, type StatisticKey } from './repository.ts'

const DESCRIPTIONS: Record<StatisticKey, string> = {
  resting_heart_rate: `bpm: the lowest mean heart rate over the day's 5-minute windows that have samples in at least ${RESTING_WINDOW_MIN_MINUTES} of their minutes.`,
  heart_rate_avg: 'bpm, mean of all heart rate samples.',
  heart_rate_min: 'bpm, lowest heart rate sample.',
  heart_rate_max: 'bpm, highest heart rate sample.',
  hrv_rmssd_avg: 'ms, mean of the HRV (RMSSD) samples.',
  skin_temperature_avg: '°C, mean skin temperature.',
  spo2_avg: '%, mean blood oxygen saturation.',
  respiratory_rate_avg: 'breaths per minute, mean.',
  stress_avg: '0..100, mean stress score.',
  steps: 'Total steps.',
  distance: 'm, total distance.',
  active_energy: 'kcal, total active energy.',
  sleep_time:
    'Seconds asleep in the sleep sessions dated on the day, main and naps (`total_sleep` of GET /v1/sleep/daily). Over a period: the mean of the days that have sleep.',
  mood: "1..5: the day feedback's mood when the user gave one, otherwise the mean of the day's check-in moods. Over a period: the mean of its days' moods.",
  checkin_count: 'Number of check-ins (0 when none).',
}

/** Keys that are never null: counts are 0 when there is nothing to count. */
const COUNTS: StatisticKey[] = ['checkin_count']

const nullableNumber = (description: string) => Type.Union([Type.Number(), Type.Null()], { description })

function metrics<T extends TSchema>(make: (key: StatisticKey) => T) {
  return Object.fromEntries(STATISTIC_KEYS.map((k) => [k, make(k)])) as Record<StatisticKey, T>
}

export const DailyQuerySchema = Type.Object({ from: DateSchema, to: DateSchema }, { additionalProperties: false })

export const DailyStatisticsSchema = Type.Object(
  {
    date: Type.String({ description: "Calendar day (YYYY-MM-DD) in the user's time zone." }),
    ...metrics((k) =>
      COUNTS.includes(k)
        ? Type.Integer({ minimum: 0, description: DESCRIPTIONS[k] })
        : nullableNumber(`${DESCRIPTIONS[k]} null when the day has no such samples.`),
    ),
  },
  { additionalProperties: false },
)

export const DailyResultSchema = Type.Object(
  {
    time_zone: Type.String(),
    data: Type.Array(DailyStatisticsSchema),
  },
  { additionalProperties: false },
)

export const SummaryQuerySchema = Type.Object(
  {
    period: Type.Unsafe<'week' | 'month'>({ type: 'string', enum: ['week', 'month'] }),
    date: Type.Optional({
      ...DateSchema,
      description: "Any day of the period; default today in the user's time zone.",
    }),
  },
  { additionalProperties: false },
)

const PeriodSchema = Type.Object(
  { from: Type.String({ description: 'First day (YYYY-MM-DD).' }), to: Type.String({ description: 'Last day.' }) },
  { additionalProperties: false },
)

const ChangeSchema = (key: StatisticKey) =>
  Type.Object(
    {
      value: nullableNumber(DESCRIPTIONS[key]),
      previous: nullableNumber('The same over the previous period.'),
      change: nullableNumber('value - previous; null when either is null.'),
      change_percent: nullableNumber('100 × change / previous; null when either is null or previous is 0.'),
    },
    { additionalProperties: false },
  )

export const SummaryResultSchema = Type.Object(
  {
    period: Type.String(),
    time_zone: Type.String(),
    current: PeriodSchema,
    previous: PeriodSchema,
    days_with_data: Type.Integer({
      description: 'Days of the period with measurement samples (days with only journal entries are not counted).',
    }),
    previous_days_with_data: Type.Integer({ description: 'The same over the previous period.' }),
    metrics: Type.Object(metrics(ChangeSchema), { additionalProperties: false }),
  },
  { additionalProperties: false },
)
