import { DataDirBusyError } from '../db/data-dir-lock.ts'
import { ConfigError } from './config.ts'
import { rootCause } from './errors.ts'

/** What the server was trying to use when it failed, to name it (never a password). */
export interface StartupContext {
  databaseUrl?: string
  dataDir?: string
  host?: string
  port?: number
}

/** `postgres://user:secret@db:5432/app` → `db:5432/app`: where, without credentials. */
function describeDatabase(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || 5432}${u.pathname}`
  } catch {
    return 'the configured server'
  }
}

const DB_PROBLEMS: Record<string, string> = {
  ECONNREFUSED: 'nothing accepts connections there',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve (DNS)',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ECONNRESET: 'the server closed the connection',
  '28P01': 'the password was refused',
  '28000': 'the server refused this user',
  '3D000': 'the database does not exist',
  '57P03': 'the server is starting up or shutting down',
}

/**
 * A start-up failure an operator can fix, as one or two plain lines naming the setting and what to
 * do; null for anything else (a bug: let it print its stack).
 */
export function describeStartupError(err: unknown, ctx: StartupContext): string | null {
  if (err instanceof ConfigError) return err.message
  if (err instanceof DataDirBusyError) return err.message
  const cause = rootCause(err) as { code?: string; message?: string; syscall?: string } | undefined
  const code = String(cause?.code ?? '')
  if (cause?.syscall === 'listen' || code === 'EADDRINUSE') {
    const where = `HOST=${ctx.host} PORT=${ctx.port}`
    if (code === 'EADDRINUSE')
      return `Cannot listen on ${where}: the port is already in use (another server?).\nStop that process or set PORT to a free port.`
    if (code === 'EACCES')
      return `Cannot listen on ${where}: permission denied.\nUse a PORT above 1023, or give this process the right to bind low ports.`
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      return `Cannot listen on ${where}: HOST is not an address of this machine.\nSet HOST to one of its addresses (0.0.0.0 for all).`
    return `Cannot listen on ${where}: ${cause?.message ?? code}.`
  }
  if (ctx.databaseUrl && (DB_PROBLEMS[code] || /connect|timeout/i.test(cause?.message ?? ''))) {
    const problem = DB_PROBLEMS[code] ?? 'the connection failed'
    return `Cannot reach PostgreSQL at ${describeDatabase(ctx.databaseUrl)} (DATABASE_URL): ${problem}.\nCheck that the database server runs and that DATABASE_URL is right.`
  }
  if (!ctx.databaseUrl && ctx.dataDir && ['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENOTDIR'].includes(code)) {
    return `Cannot use DATA_DIR ${ctx.dataDir}: ${cause?.message ?? code}.\nPoint DATA_DIR at a folder this process can write.`
  }
  return null
}
