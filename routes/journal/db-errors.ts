/** True when `err` (or the driver error drizzle wrapped in it) is a unique violation of `constraint`. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  for (let e = err as { code?: string; constraint?: string; cause?: unknown } | undefined, i = 0; e && i < 3; i++) {
    if (e.code === '23505') return e.constraint === undefined || e.constraint === constraint
    e = e.cause as typeof e
  }
  return false
}
