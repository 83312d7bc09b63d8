/**
 * The database's own error in `err`: node-postgres and PGlite throw it with its SQLSTATE `code` (and the
 * `constraint` it concerns), and drizzle wraps it as the `cause` of its own error.
 */
export function driverError(err: unknown): { code: string; constraint?: string } | undefined {
  for (let e = err as { code?: unknown; constraint?: string; cause?: unknown } | undefined, i = 0; e && i < 3; i++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return { code: e.code, constraint: e.constraint }
    e = e.cause as typeof e
  }
  return undefined
}
