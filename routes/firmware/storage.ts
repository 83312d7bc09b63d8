import { createHash, randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { AppError } from '../../plugins/errors.ts'

export interface ReceivedFile {
  tempPath: string
  size: number
  sha256: string
}

const TEMP_PREFIX = '.upload-'
// A temp file this old belongs to an upload that died with its process (crash, kill -9).
const STALE_TEMP_MS = 24 * 3600_000

export function tooLarge(maxBytes: number) {
  return new AppError(413, 'firmware_too_large', `A firmware image may be at most ${maxBytes} bytes.`)
}

/**
 * The firmware folder. Images are written to a temp file in the same folder (same file system, so the
 * final rename is atomic) and renamed to `<id>.bin` only once their database row has committed.
 * Several server instances must share this folder (a network volume) for downloads to work everywhere.
 */
export function createFirmwareStorage(dir: string) {
  const root = resolve(dir)
  const finalPath = (id: string) => join(root, `${id}.bin`)

  return {
    root,

    async init() {
      await mkdir(root, { recursive: true })
      const now = Date.now()
      for (const name of await readdir(root)) {
        if (!name.startsWith(TEMP_PREFIX)) continue
        const path = join(root, name)
        const info = await stat(path).catch(() => null)
        if (info && now - info.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true })
      }
    },

    /**
     * Streams a request body to a temp file, hashing and counting as it goes; never holds it whole.
     * Over `maxBytes` it stops reading and throws 413; the request itself is left alone (not destroyed)
     * so the 413 still reaches the client. On any failure (limit, aborted request, disk) the temp file
     * is removed before the error is rethrown.
     */
    async receive(source: Readable, maxBytes: number): Promise<ReceivedFile> {
      const tempPath = join(root, `${TEMP_PREFIX}${randomUUID()}`)
      const hash = createHash('sha256')
      const file = createWriteStream(tempPath, { flags: 'wx' })
      let size = 0
      try {
        const fileFailed = new Promise<never>((_, reject) => file.once('error', reject))
        fileFailed.catch(() => {})
        for await (const chunk of source.iterator({ destroyOnReturn: false })) {
          const buf = chunk as Buffer
          size += buf.length
          if (size > maxBytes) throw tooLarge(maxBytes)
          hash.update(buf)
          if (!file.write(buf)) {
            await Promise.race([new Promise<void>((r) => file.once('drain', () => r())), fileFailed])
          }
        }
        file.end()
        await finished(file)
        return { tempPath, size, sha256: hash.digest('hex') }
      } catch (err) {
        file.destroy()
        await rm(tempPath, { force: true })
        throw err
      }
    },

    async commit(tempPath: string, id: string) {
      await rename(tempPath, finalPath(id))
    },

    async discard(tempPath: string) {
      await rm(tempPath, { force: true })
    },

    async remove(id: string) {
      await rm(finalPath(id), { force: true })
    },

    /** An open handle on the image and its size on disk; null when the file is missing. */
    async open(id: string) {
      try {
        const handle = await open(finalPath(id), 'r')
        const info = await handle.stat()
        return { handle, size: info.size }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
    },

    /** Files in the folder (tests and operators: proves nothing is left behind). */
    async list() {
      return readdir(root)
    },
  }
}

export type FirmwareStorage = ReturnType<typeof createFirmwareStorage>
