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

export const SETTINGS = {
  'notifications-insights__push': flag('Push notification when a new insight is ready.', true),
  'notifications-insights__email': flag('E-mail when a new insight is ready.', false),
  'notifications-sharing__push': flag('Push notification for sharing invites and changes.', true),
  'notifications-sharing__email': flag('E-mail for sharing invites and changes.', true),
  'notifications-firmware__push': flag('Push notification when a firmware update is available for the watch.', true),
  'notifications-security__email': flag('E-mail on security events (new login, password change).', true),
  'notifications-weekly_report__email': flag('Weekly summary by e-mail.', false),
  'reminders-checkin__push': flag('Daily check-in reminder by push notification.', false),
  'reminders-checkin__time': {
    schema: Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }),
    default: '20:00',
    description: 'Local time (HH:MM, 24 h, in the profile time zone) of the check-in reminder. Default "20:00".',
  },
  units: {
    schema: Type.Union([Type.Literal('metric'), Type.Literal('imperial')]),
    default: 'metric',
    description: 'Units the apps display (the API always uses kg and cm). Default "metric".',
  },
  week_start: {
    schema: Type.Union([Type.Literal('monday'), Type.Literal('sunday')]),
    default: 'monday',
    description: 'First day of the week in the apps. Default "monday".',
  },
  language: {
    schema: Type.String({ pattern: '^[a-z]{2,3}(-[A-Z]{2})?$', maxLength: 6 }),
    default: 'en',
    description: 'Language of e-mails and notifications (BCP 47: "en", "fi", "pt-BR"). Default "en".',
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
