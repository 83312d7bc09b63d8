import { driverError } from '../../db/errors.ts'

/** True when `err` (or the driver error drizzle wrapped in it) is a unique violation of `constraint`. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = driverError(err)
  return e?.code === '23505' && (e.constraint === undefined || e.constraint === constraint)
}
