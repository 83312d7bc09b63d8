import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildTestApp } from './app.ts'
import { userWithToken } from './fixtures.ts'

/** An app whose FIRMWARE_DIR is a fresh temp folder, removed when the test ends. */
export async function firmwareApp(t: Test, env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'nowatch-firmware-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const app = await buildTestApp(t, { env: { FIRMWARE_DIR: dir, ...env } })
  const admin = await userWithToken(app, { role: 'admin' })
  return { app, dir, admin }
}

/** What FIRMWARE_DIR holds: `<id>.bin` files, and `.upload-*` temp files while uploads run. */
export const filesIn = (dir: string) => readdir(dir)

export const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex')
export const image = (bytes = 300 * 1024) => randomBytes(bytes)

export interface UploadMeta {
  hardware_model?: string
  version: string
  channel?: 'stable' | 'beta'
  min_version?: string
  mandatory?: boolean
  rollout_percentage?: number
  release_notes?: string
}

export function uploadRequest(headers: Record<string, string>, meta: UploadMeta, body: Buffer) {
  const query = new URLSearchParams(
    Object.entries({ hardware_model: 'NW-1', ...meta }).map(([k, v]): [string, string] => [k, String(v)]),
  )
  return {
    method: 'POST' as const,
    url: `/v1/admin/firmware?${query}`,
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    payload: body,
  }
}

/** Uploads (and by default publishes) a release; returns its admin view. */
export async function release(
  app: FastifyInstance,
  headers: Record<string, string>,
  meta: UploadMeta,
  opts: { publish?: boolean; body?: Buffer } = {},
) {
  const res = await app.inject(uploadRequest(headers, meta, opts.body ?? image(1024)))
  if (res.statusCode !== 201) throw new Error(`upload failed: ${res.statusCode} ${res.body}`)
  const id = res.json().id as string
  if (opts.publish === false) return res.json()
  const pub = await app.inject({ method: 'POST', url: `/v1/admin/firmware/${id}/publish`, headers })
  if (pub.statusCode !== 200) throw new Error(`publish failed: ${pub.statusCode} ${pub.body}`)
  return pub.json()
}
