import { type TSchema, Type } from '@sinclair/typebox'

/**
 * Account settings as key/value, after the WAVIoT reference (`notifications-<topic>__<channel>`).
 * The set of keys is closed: each has a type, a default and a meaning. Stored values are JSON text
 * in `user_settings.value`; a key without a row has its default.
 */
interface SettingDefinition {
  schema: TSchema
  default: boolean | string
  description: string
}

const flag = (description: string, fallback: boolean): SettingDefinition => ({
  schema: Type.Boolean(),
  default: fallback,
  description: `${description} Default ${fallback}.`,
})

// Only settings that something honours. Push notifications, the weekly report mail, insight mails and
// check-in reminders were listed once and did nothing (no push service, no such mails): they are gone, and
// a stored value of a dropped key is ignored. They come back with the feature that honours them.
export const SETTINGS = {
  'notifications-security__email': flag(
    'E-mail when the account is logged in from a new device or network (what "new" means: `POST /v2/auth/login`). Mails about password and e-mail address changes are always sent.',
    true,
  ),
  units: {
    schema: Type.Union([Type.Literal('metric'), Type.Literal('imperial')]),
    default: 'metric',
    description:
      'Units the apps display, kept here for every app of the account (the API always uses kg and cm). Default "metric".',
  },
  week_start: {
    schema: Type.Union([Type.Literal('monday'), Type.Literal('sunday')]),
    default: 'monday',
    description:
      'First day of the week: the weeks of `GET /v1/statistics/summary?period=week` start on it, and the apps show it. Default "monday".',
  },
  language: {
    schema: Type.String({ pattern: '^[a-z]{2,3}(-[A-Z]{2})?$', maxLength: 6 }),
    default: 'en',
    description:
      'Language the apps display, kept here for every app of the account (BCP 47: "en", "fi", "pt-BR"); e-mails are in English for now. Default "en".',
  },
} satisfies Record<string, SettingDefinition>

export type SettingKey = keyof typeof SETTINGS
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[]
export type SettingValue = boolean | string

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key)
}

/** Every key with its effective value: the stored one, else the default. */
export function effectiveSettings(stored: Array<{ key: string; value: string }>): Record<SettingKey, SettingValue> {
  const out = Object.fromEntries(SETTING_KEYS.map((k) => [k, SETTINGS[k].default])) as Record<SettingKey, SettingValue>
  for (const row of stored) {
    // A key dropped from the definitions stays in the table unseen rather than failing every read.
    if (isSettingKey(row.key)) out[row.key] = decodeSetting(row.value, SETTINGS[row.key].default)
  }
  return out
}

export function encodeSetting(value: SettingValue): string {
  return JSON.stringify(value)
}

export function decodeSetting(text: string, fallback: SettingValue): SettingValue {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === typeof fallback ? (v as SettingValue) : fallback
  } catch {
    return fallback
  }
}
