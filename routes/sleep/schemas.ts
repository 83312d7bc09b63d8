import { type Static, Type } from '@sinclair/typebox'
import { DateSchema, DateTimeSchema, PageSchema, PaginationQuerySchema, UuidSchema } from '../common.ts'
import { NO_DEVICE } from '../measurement/repository.ts'
import type { SessionVitals } from './repository.ts'
import type { SleepSession } from './sessions.ts'

const nullableNumber = (description: string) => Type.Union([Type.Number(), Type.Null()], { description })
const seconds = (description: string) => Type.Number({ minimum: 0, description: `Seconds: ${description}` })

export const SleepRangeQuerySchema = Type.Object(
  {
    from: { ...DateSchema, description: "First day (YYYY-MM-DD, the user's time zone) of the sessions' dates." },
    to: { ...DateSchema, description: 'Last day, inclusive.' },
  },
  { additionalProperties: false },
)

export const SleepListQuerySchema = Type.Composite([SleepRangeQuerySchema, PaginationQuerySchema], {
  additionalProperties: false,
})

export const SleepSessionSchema = Type.Object(
  {
    id: {
      ...UuidSchema,
      description:
        'Derived from the device and the sleep onset: the same session has the same id on every read (a late sample that moves its onset gives it a new one).',
    },
    date: Type.String({ description: "The calendar day, in the user's time zone, on which the session ends." }),
    kind: Type.Union([Type.Literal('main'), Type.Literal('nap')], {
      description: "`main`: the day's session with the most time asleep; `nap`: any other session of that day.",
    }),
    device_id: Type.Union([Type.String(), Type.Null()], { description: 'The device that recorded it.' }),
    start: { ...DateTimeSchema, description: 'Bedtime start: in bed, awake, before falling asleep (or sleep onset).' },
    end: { ...DateTimeSchema, description: 'Bedtime end: after the final awakening.' },
    sleep_onset: { ...DateTimeSchema, description: 'Start of the first asleep stretch.' },
    wake: { ...DateTimeSchema, description: 'End of the last asleep stretch (final awakening).' },
    in_bed: seconds('end − start.'),
    asleep: seconds('light + deep + REM.'),
    awake: seconds('awake (stage 0) between start and end, before, during and after sleep.'),
    unrecorded: seconds('time between start and end with no stage recorded.'),
    light: seconds('light sleep.'),
    deep: seconds('deep sleep.'),
    rem: seconds('REM sleep.'),
    latency: seconds('sleep_onset − start.'),
    efficiency: Type.Number({ minimum: 0, maximum: 1, description: 'asleep ÷ in_bed.' }),
    heart_rate_avg: nullableNumber('bpm, mean heart rate in the session; null without samples.'),
    heart_rate_lowest: nullableNumber('bpm, the lowest one-minute mean heart rate in the session.'),
    hrv_rmssd_avg: nullableNumber('ms, mean HRV (RMSSD) in the session.'),
    respiratory_rate_avg: nullableNumber('breaths per minute, mean in the session.'),
  },
  { additionalProperties: false },
)
export type SleepSessionJson = Static<typeof SleepSessionSchema>

export const SleepPageSchema = Type.Composite(
  [PageSchema(SleepSessionSchema), Type.Object({ time_zone: Type.String() })],
  { additionalProperties: false },
)

export const SleepDaySchema = Type.Object(
  {
    date: Type.String({ description: "Calendar day (YYYY-MM-DD) in the user's time zone." }),
    total_sleep: nullableNumber(
      'Seconds asleep in the sessions dated on this day, main and naps; null when there is none.',
    ),
    main_sleep: nullableNumber('Seconds asleep in the main session; null when there is none.'),
    main_session_id: Type.Union([UuidSchema, Type.Null()], { description: 'The `id` of the main session.' }),
    session_count: Type.Integer({ minimum: 0, description: 'Sessions dated on this day (main and naps).' }),
    sleep_time_goal: Type.Integer({ description: "Seconds: the profile's sleep_time_goal (as it is now)." }),
    goal_difference: nullableNumber('Seconds: total_sleep − sleep_time_goal; null without sleep.'),
    goal_met: Type.Union([Type.Boolean(), Type.Null()], {
      description: 'total_sleep ≥ sleep_time_goal; null without sleep.',
    }),
  },
  { additionalProperties: false },
)

export const SleepDailyResultSchema = Type.Object(
  { time_zone: Type.String(), data: Type.Array(SleepDaySchema) },
  { additionalProperties: false },
)

const iso = (ms: number) => new Date(ms).toISOString()
const s = (ms: number) => ms / 1000

/** A derived session and its vitals as the API shows it (durations in seconds). */
export function toSessionJson(x: SleepSession, v: SessionVitals): SleepSessionJson {
  const inBed = x.end - x.start
  return {
    id: x.id,
    date: x.date,
    kind: x.kind,
    device_id: x.deviceId === NO_DEVICE ? null : x.deviceId,
    start: iso(x.start),
    end: iso(x.end),
    sleep_onset: iso(x.onset),
    wake: iso(x.wake),
    in_bed: s(inBed),
    asleep: s(x.asleep),
    awake: s(x.stages.awake),
    unrecorded: s(x.unrecorded),
    light: s(x.stages.light),
    deep: s(x.stages.deep),
    rem: s(x.stages.rem),
    latency: s(x.onset - x.start),
    efficiency: inBed > 0 ? x.asleep / inBed : 0,
    ...v,
  }
}
