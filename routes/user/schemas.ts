import { type TSchema, Type } from '@sinclair/typebox'
import { DateSchema, DateTimeSchema, DateWindowSchema, UuidSchema, WINDOWS } from '../common.ts'
import { SETTINGS, SETTING_KEYS } from './settings.ts'

const Nullable = <T extends TSchema>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description ? { description } : {})

/** Tip categories the apps know; the Beddit reference's "general" plus one per NOWATCH domain. */
export const TIP_AUDIENCES = [
  'general',
  'sleep',
  'activity',
  'heart',
  'stress',
  'recovery',
  'mindfulness',
  'nutrition',
] as const

export const SEX = ['male', 'female'] as const

/** Sane physical ranges (kg, cm, seconds): typing errors are caught, no real person is refused. */
export const LIMITS = {
  weight: { minimum: 2, maximum: 500 },
  height: { minimum: 30, maximum: 275 },
  sleepTimeGoal: { minimum: 3600, maximum: 57600 },
  oldestBirthDate: '1900-01-01',
}

const NameSchema = Type.String({ minLength: 1, maxLength: 150, pattern: '\\S' })
const SexSchema = Type.Union(
  SEX.map((s) => Type.Literal(s)),
  { description: 'Biological sex: "male", "female", or null.' },
)
const WeightSchema = Type.Number({ ...LIMITS.weight, description: 'Weight in kilograms.' })
const HeightSchema = Type.Number({ ...LIMITS.height, description: 'Height in centimetres.' })
const SleepTimeGoalSchema = Type.Integer({
  ...LIMITS.sleepTimeGoal,
  description: 'Sleep time goal in seconds (1 h to 16 h). Never null; default 28800 (8 h).',
})
const TipAudiencesSchema = Type.Array(Type.Union(TIP_AUDIENCES.map((a) => Type.Literal(a))), {
  uniqueItems: true,
  maxItems: TIP_AUDIENCES.length,
  description: `Tip categories the user has chosen to see: ${TIP_AUDIENCES.join(', ')}. May be empty, never null.`,
})
const TimeZoneSchema = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    'IANA time zone name (e.g. "Europe/Helsinki", "UTC"). Calendar days and aggregates use it. Offsets like "+02:00" are refused.',
  examples: ['Europe/Helsinki'],
})

export const ProfileSchema = Type.Object(
  {
    id: UuidSchema,
    email: Type.String({
      description: 'Login e-mail (lower-cased). A change sent with PATCH stays in `pending_email` until confirmed.',
    }),
    first_name: NameSchema,
    last_name: NameSchema,
    date_of_birth: Nullable(DateSchema, 'Date of birth (YYYY-MM-DD), or null.'),
    sex: Nullable(SexSchema),
    weight: Nullable(WeightSchema),
    height: Nullable(HeightSchema),
    sleep_time_goal: SleepTimeGoalSchema,
    tip_audiences: TipAudiencesSchema,
    time_zone: TimeZoneSchema,
    email_verified: Type.Boolean(),
    pending_email: Type.Union([Type.String(), Type.Null()], {
      description:
        'The address an e-mail change waits to be confirmed for (`POST /v1/users/me/email/confirm` with the code mailed there), for 24 h; null when no change is pending.',
    }),
    created: DateTimeSchema,
    updated: DateTimeSchema,
  },
  { additionalProperties: false, description: 'User profile (Beddit reference fields, NOWATCH names)' },
)

const ignored = (what: string) => Type.Optional(Type.Unknown({ description: `${what}; ignored if present.` }))

export const ProfilePatchSchema = Type.Object(
  {
    first_name: Type.Optional(NameSchema),
    last_name: Type.Optional(NameSchema),
    date_of_birth: Type.Optional(
      Nullable(DateWindowSchema(WINDOWS.birth), `A past date, not before ${LIMITS.oldestBirthDate}; null clears it.`),
    ),
    sex: Type.Optional(Nullable(SexSchema)),
    weight: Type.Optional(Nullable(WeightSchema)),
    height: Type.Optional(Nullable(HeightSchema)),
    sleep_time_goal: Type.Optional(SleepTimeGoalSchema),
    tip_audiences: Type.Optional(TipAudiencesSchema),
    time_zone: Type.Optional(TimeZoneSchema),
    id: ignored('Read-only'),
    email: Type.Optional(
      Type.String({
        format: 'email',
        maxLength: 254,
        description:
          'A new login e-mail: needs `password`, and takes effect only when confirmed with the code mailed to it (see the operation). The current address (any case) is no change and needs no password.',
      }),
    ),
    password: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'The current password; required with a new `email`.' }),
    ),
    pending_email: ignored('Read-only'),
    email_verified: ignored('Read-only'),
    created: ignored('Read-only'),
    updated: ignored('Read-only'),
  },
  {
    additionalProperties: false,
    description:
      'Any subset of the profile. null clears a nullable field (date_of_birth, sex, weight, height); null on first_name, last_name, sleep_time_goal, tip_audiences or time_zone is `400 validation_failed`. Read-only fields are ignored, so a profile from GET can be sent back as is; unknown fields are refused.',
  },
)

const settingProps = Object.fromEntries(
  SETTING_KEYS.map((k) => [k, { ...SETTINGS[k].schema, description: SETTINGS[k].description }]),
) as Record<string, TSchema>

export const SettingsSchema = Type.Object(Object.fromEntries(SETTING_KEYS.map((k) => [k, settingProps[k]])), {
  additionalProperties: false,
  description: 'Every account setting with its effective value (stored or default)',
})

export const SettingsPutSchema = Type.Object(
  Object.fromEntries(SETTING_KEYS.map((k) => [k, Type.Optional(Nullable(settingProps[k]))])),
  {
    additionalProperties: false,
    description:
      'Any subset of the settings; keys not sent keep their value, null resets a key to its default. Unknown keys and values of the wrong type are `400 validation_failed`.',
  },
)

export const EmailConfirmBodySchema = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 16, description: 'The 6-digit code mailed to the new address.' }) },
  { additionalProperties: false },
)
