import { chmodSync, rmSync } from 'node:fs'
import { type Socket, createServer } from 'node:net'
import { join } from 'node:path'
import type { PGlite } from '@electric-sql/pglite'

/**
 * The owning process serves its PGlite over the PostgreSQL wire protocol on a Unix socket inside
 * DATA_DIR, so the operator CLI (through `pg`) works while the server runs, and its writes are the
 * server's at once: there is one database, one owner.
 *
 * Why not @electric-sql/pglite-socket: its releases pin exact peer versions (0.2.17 wants
 * pglite 0.5.14 and seven extension packages), and its queue serialises socket clients only among
 * themselves, one message at a time — the owner's own queries can then run inside a socket client's
 * open transaction, or between its Parse and Sync. Here a connection takes a *lease* on the whole
 * PGlite (its transaction mutex, the one PGlite's own query() and transaction() take) for a unit of
 * work, and gives it back only when the backend reports ReadyForQuery(idle): a CLI transaction and
 * the server's transactions never interleave. The message framing follows pglite-socket's.
 */
export const SOCKET_NAME = '.s.PGSQL.5432'
/** A connection that holds the lease (mid-transaction) and sends nothing for this long is cut off. */
export const LEASE_IDLE_MS = 15_000
// Unix socket paths are limited to 108 bytes on Linux (sun_path), 104 on macOS.
const MAX_SOCKET_PATH = 103

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const PROTOCOL_3 = 196608

// Private in PGlite's types, public at run time: the transaction mutex PGlite's query() and transaction() hold.
interface PgliteInternals {
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>
}

export function socketPathFor(dataDir: string): string {
  return join(dataDir, SOCKET_NAME)
}

export interface PgliteSocketServer {
  path: string
  connections(): number
  close(): Promise<void>
}

function simpleQuery(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`, 'utf8')
  const msg = Buffer.alloc(5 + text.length)
  msg.write('Q', 0)
  msg.writeInt32BE(4 + text.length, 1)
  text.copy(msg, 5)
  return msg
}
const SYNC = Uint8Array.from([0x53, 0, 0, 0, 4])

export async function servePgliteOnSocket(
  pglite: PGlite,
  dataDir: string,
  log: { warn(obj: object, msg: string): void } = { warn() {} },
): Promise<PgliteSocketServer> {
  const path = socketPathFor(dataDir)
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new Error(`the socket path ${path} is too long for a Unix socket (max ${MAX_SOCKET_PATH} bytes)`)
  }
  // We own the folder (data-dir lock), so a socket file here is a dead owner's leftover.
  rmSync(path, { force: true })
  const internals = pglite as unknown as PgliteInternals
  const sockets = new Set<Socket>()
  // Each connection's last piece of work (its clean-up once closed): awaited before the database closes.
  const pending = new Set<Promise<void>>()

  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    handleConnection(socket)
  })

  function handleConnection(socket: Socket) {
    let buffer = Buffer.alloc(0)
    let started = false
    let closed = false
    let releaseLease: (() => void) | null = null
    let idleTimer: NodeJS.Timeout | undefined
    // Messages of one connection run in order; the chain is this connection's queue.
    let chain: Promise<void> = Promise.resolve()

    async function acquire() {
      if (releaseLease) return
      await new Promise<void>((granted) => {
        void internals._runExclusiveTransaction(
          () =>
            new Promise<void>((release) => {
              releaseLease = () => {
                releaseLease = null
                release()
              }
              granted()
            }),
        )
      })
    }

    function armIdle() {
      clearTimeout(idleTimer)
      if (!releaseLease) return
      idleTimer = setTimeout(() => {
        log.warn({ socket: path }, 'a socket client held the database idle too long; rolling back and disconnecting')
        socket.destroy()
      }, LEASE_IDLE_MS)
      idleTimer.unref()
    }

    async function run(message: Uint8Array) {
      await acquire()
      let tail = Buffer.alloc(0)
      await pglite.runExclusive(() =>
        pglite.execProtocolRawStream(message, {
          onRawData(data) {
            const copy = Buffer.from(data)
            tail = Buffer.concat([tail, copy]).subarray(-6)
            if (!closed) socket.write(copy)
          },
        }),
      )
      // ReadyForQuery ('Z', length 5, status) ends every unit of work; 'I' = no transaction open.
      if (tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5 && tail[5] === 0x49) releaseLease?.()
      armIdle()
    }

    async function cleanUp() {
      clearTimeout(idleTimer)
      if (!releaseLease) return
      // The client went away mid-unit: end any half-sent extended query, roll back what it left open.
      try {
        await pglite.runExclusive(async () => {
          await pglite.execProtocolRaw(SYNC)
          if (pglite.isInTransaction()) await pglite.execProtocolRaw(simpleQuery('ROLLBACK'))
        })
      } catch (err) {
        log.warn({ err }, 'socket client clean-up')
      }
      releaseLease?.()
    }

    function enqueue(fn: () => Promise<void>) {
      chain = chain.then(fn).catch((err) => {
        log.warn({ err }, 'socket client failed')
        socket.destroy()
      })
    }

    function drain() {
      while (buffer.length >= 4) {
        if (!started) {
          if (buffer.length < 8) return
          const length = buffer.readInt32BE(0)
          const code = buffer.readInt32BE(4)
          if (buffer.length < length) return
          const message = buffer.subarray(0, length)
          buffer = buffer.subarray(length)
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            socket.write('N') // no TLS on a local socket
          } else if (code === CANCEL_REQUEST) {
            socket.end() // PGlite has no other backend to signal
            return
          } else if (code === PROTOCOL_3) {
            started = true
            enqueue(() => run(new Uint8Array(message)))
          } else {
            socket.destroy()
            return
          }
          continue
        }
        if (buffer.length < 5) return
        const length = 1 + buffer.readInt32BE(1)
        if (buffer.length < length) return
        const message = buffer.subarray(0, length)
        buffer = buffer.subarray(length)
        if (message[0] === 0x58) {
          // Terminate: never forwarded (PGlite's backend outlives every client).
          socket.end()
          return
        }
        enqueue(() => run(new Uint8Array(message)))
      }
    }

    socket.on('data', (data) => {
      clearTimeout(idleTimer)
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data
      drain()
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => {
      closed = true
      chain = chain.then(cleanUp, cleanUp)
      const done = chain.finally(() => pending.delete(done))
      pending.add(done)
    })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  // Only this user may connect: the socket speaks as the database superuser, with no password.
  chmodSync(path, 0o600)

  return {
    path,
    connections: () => sockets.size,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await Promise.allSettled([...pending])
      rmSync(path, { force: true })
    },
  }
}
