import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

/**
 * One process owns a PGlite data folder: two PGlite instances on one folder corrupt it (PGlite is a
 * single-user Postgres with no shared-memory interlock), so the first process writes `owner.pid`
 * with O_EXCL and every other one refuses to open the folder, naming the holder.
 *
 * The same design as PostgreSQL's own `postmaster.pid`: a file that names the owner, created
 * atomically, judged stale when its process is gone. That makes recovery after `kill -9` immediate
 * (no lease to wait out) and survives pid reuse in containers, where a restarted server often gets
 * the dead one's pid: the file also records the process start time, and a pid equal to our own is
 * by definition not another live owner.
 */
export const LOCK_FILE = 'owner.pid'

export interface LockOwner {
  pid: number
  /** Process start time in clock ticks since boot (Linux /proc), to tell a reused pid from the owner. */
  started: number | null
  host: string
}

export class DataDirBusyError extends Error {
  override name = 'DataDirBusyError'
  constructor(
    readonly dataDir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `DATA_DIR ${dataDir} is in use by process ${owner.pid} (an embedded database folder has one owner).\n` +
        'Stop that process, or point DATA_DIR at another folder.',
    )
  }
}

function processStart(pid: number): number | null {
  try {
    // Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces, so count after its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[19])
  } catch {
    return null
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.pid === process.pid) return false
  if (owner.host !== hostname()) return true // another machine's process: cannot tell, assume alive
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const started = processStart(owner.pid)
  return owner.started === null || started === null || started === owner.started
}

function readOwner(file: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner
    return Number.isInteger(owner.pid) ? owner : null
  } catch {
    return null
  }
}

export interface DataDirLock {
  release(): void
}

/** Takes the folder or throws DataDirBusyError; `dataDir` must exist and be absolute. */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, LOCK_FILE)
  const me: LockOwner = { pid: process.pid, started: processStart(process.pid), host: hostname() }
  const content = `${JSON.stringify(me)}\n`
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, content, { flag: 'wx', mode: 0o600 })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err
    }
    const owner = readOwner(file)
    // A file being written this very moment reads as empty: treat it as held by an unknown process.
    if (owner && isAlive(owner)) throw new DataDirBusyError(dataDir, owner)
    if (!owner && attempt < 2) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
      continue
    }
    // Stale (its process is gone): move it aside rather than unlink, so a racing starter that already
    // replaced it loses nothing it cannot see; then try the exclusive create again.
    try {
      renameSync(file, `${file}.stale-${process.pid}`)
      unlinkSync(`${file}.stale-${process.pid}`)
    } catch {}
  }
  let released = false
  const release = () => {
    if (released) return
    released = true
    process.removeListener('exit', release)
    // Only remove the file if it is still ours.
    if (readOwner(file)?.pid === process.pid) {
      try {
        unlinkSync(file)
      } catch {}
    }
  }
  // Released on any exit that runs JavaScript; after kill -9 the next start finds the pid dead.
  process.on('exit', release)
  return { release }
}

/** Who holds the folder now, if anyone alive does. */
export function dataDirOwner(dataDir: string): LockOwner | null {
  const owner = readOwner(join(dataDir, LOCK_FILE))
  return owner && isAlive(owner) ? owner : null
}
