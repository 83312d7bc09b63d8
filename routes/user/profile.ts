import type { ErrorDetail } from '../../plugins/errors.ts'
import type { ProfileChanges, UserRow } from './repository.ts'
import { LIMITS } from './schemas.ts'

export function toProfile(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    first_name: u.firstName,
    last_name: u.lastName,
    date_of_birth: u.dateOfBirth,
    sex: u.sex,
    weight: u.weight,
    height: u.height,
    sleep_time_goal: u.sleepTimeGoal,
    tip_audiences: u.tipAudiences as never[],
    time_zone: u.timeZone,
    email_verified: u.emailVerifiedAt !== null,
    pending_email:
      u.pendingEmail && u.pendingEmailExpiresAt && u.pendingEmailExpiresAt.getTime() > Date.now()
        ? u.pendingEmail
        : null,
    created: u.createdAt.toISOString(),
    updated: u.updatedAt.toISOString(),
  }
}

const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/

/**
 * The IANA zone name as ICU spells it ("europe/helsinki" → "Europe/Helsinki"), or null when ICU
 * does not know it. Bare offsets are refused: PostgreSQL reads "+02:00" as POSIX, west of Greenwich.
 */
export function canonicalTimeZone(name: string): string | null {
  if (!IANA_NAME.test(name)) return null
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone
    // Legacy names such as "EST5EDT" resolve to another zone: keep the name as sent then.
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name
  } catch {
    return null
  }
}

/** The latest date of birth accepted: today where it is latest on Earth (UTC+14). */
function latestBirthDate(now = new Date()): string {
  return new Date(now.getTime() + 14 * 3600_000).toISOString().slice(0, 10)
}

export interface ProfileBody {
  first_name?: string
  last_name?: string
  date_of_birth?: string | null
  sex?: 'male' | 'female' | null
  weight?: number | null
  height?: number | null
  sleep_time_goal?: number
  tip_audiences?: string[]
  time_zone?: string
  email?: string
  password?: string
}

/**
 * Maps the PATCH body to column changes, with the checks a JSON schema cannot say. Problems are
 * returned per field; the schema has already refused wrong types, ranges and nulls on never-null fields.
 */
export function profileChanges(body: ProfileBody): { changes: ProfileChanges; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = []
  const dob = body.date_of_birth
  if (typeof dob === 'string') {
    if (dob > latestBirthDate()) problems.push({ field: 'date_of_birth', problem: 'must not be in the future' })
    else if (dob < LIMITS.oldestBirthDate)
      problems.push({ field: 'date_of_birth', problem: `must not be before ${LIMITS.oldestBirthDate}` })
  }
  let timeZone: string | undefined
  if (body.time_zone !== undefined) {
    timeZone = canonicalTimeZone(body.time_zone) ?? undefined
    if (!timeZone) problems.push({ field: 'time_zone', problem: 'is not an IANA time zone name' })
  }
  return {
    changes: {
      firstName: body.first_name?.trim(),
      lastName: body.last_name?.trim(),
      dateOfBirth: dob,
      sex: body.sex,
      weight: body.weight,
      height: body.height,
      sleepTimeGoal: body.sleep_time_goal,
      tipAudiences: body.tip_audiences,
      timeZone,
    },
    problems,
  }
}
