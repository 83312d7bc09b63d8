import { join } from 'node:path'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../plugins/config.ts'
import { AppError, errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { IdParamsSchema, PageSchema, decodeCursor, encodeCursor, errorResponses, keysetPage } from '../common.ts'
import { parseRange } from './range.ts'
import { type ReleaseRow, createFirmwareRepository } from './repository.ts'
import {
  LatestQuerySchema,
  PublishedListQuerySchema,
  ReleaseSchema,
  ReportBodySchema,
  ReportSchema,
  UpdateSchema,
} from './schemas.ts'
import { channelsFor, findUpdate, toRelease, toReport } from './service.ts'
import { createFirmwareStorage } from './storage.ts'
import { parseVersion } from './versions.ts'

export const firmwareDir = (config: Config) => config.FIRMWARE_DIR ?? join(config.DATA_DIR, 'firmware')

// Users never see drafts (not released) or rolled-back images (known bad); admins see everything.
const HIDDEN_FROM_USERS = new Set<ReleaseRow['status']>(['draft', 'rolled_back'])

const BinarySchema = (description: string) => ({
  description,
  content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } },
  headers: {
    'content-length': Type.Integer({ description: 'Bytes in this answer.' }),
    etag: Type.String({ description: 'Strong ETag: the SHA-256 of the whole image, quoted hex.' }),
    'accept-ranges': Type.Literal('bytes'),
    digest: Type.String({ description: 'RFC 3230: `sha-256=<base64>` of the whole image.' }),
    'repr-digest': Type.String({ description: 'RFC 9530: `sha-256=:<base64>:` of the whole image.' }),
  },
})

const firmwareRoutes: FastifyPluginAsyncTypebox = async function firmwareRoutes(app) {
  const repo = createFirmwareRepository(app.db)
  const storage = createFirmwareStorage(firmwareDir(app.config))
  await storage.init()

  app.get(
    '/firmware/latest',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['firmware'],
        summary: 'Is there an update for this watch?',
        description:
          'The highest published release of the model above `current_version` (semantic-version order) that the caller is offered: the caller must be inside the release’s rollout cohort (a fixed bucket per user and release) and `current_version` must be at least the release’s `min_version`, else the next lower release that qualifies is offered. A device running a rolled-back release is offered the release chosen at rollback (`rollback: true`). 204 when there is nothing to install.',
        security: SECURITY.bearer,
        querystring: LatestQuerySchema,
        response: {
          200: UpdateSchema,
          204: Type.Null({ description: 'No update for this device.' }),
          ...errorResponses(400, 401),
        },
      },
    },
    async function latestFirmware(request, reply) {
      const q = request.query
      if (!parseVersion(q.current_version)) {
        throw errors.validation([{ field: 'query.current_version', problem: 'is not a semantic version' }])
      }
      const update = await findUpdate(repo, {
        hardware: q.hardware,
        currentVersion: q.current_version,
        channel: q.channel ?? 'stable',
        userId: request.user.sub,
      })
      if (!update) return reply.status(204).send(null)
      return update
    },
  )

  app.get(
    '/firmware',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['firmware'],
        summary: 'Published releases of a hardware model, highest version first',
        description: 'Only `published` releases; `channel=beta` lists beta and stable releases, `stable` only stable.',
        security: SECURITY.bearer,
        querystring: PublishedListQuerySchema,
        response: { 200: PageSchema(ReleaseSchema), ...errorResponses(400, 401) },
      },
    },
    async function listFirmware(request) {
      const { hardware, channel, cursor } = request.query
      const after = decodeCursor(cursor, 1)
      const channels = channel ? [...channelsFor(channel)] : (['stable', 'beta'] as const)
      return keysetPage(
        request.query,
        (take) =>
          repo.published(hardware, [...channels], { limit: take, belowKey: after ? String(after[0]) : undefined }),
        toRelease,
        (r) => encodeCursor([r.versionKey]),
      )
    },
  )

  app.get(
    '/firmware/:id/download',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['firmware'],
        summary: 'Download a firmware image (resumable with Range)',
        description:
          'Streams the image. A single `Range: bytes=…` answers 206 with `Content-Range` (resume an interrupted download; `If-Range` with the ETag guards against a changed file); a range outside the file answers 416 with `Content-Range: bytes */<size>`; several ranges are answered with the whole file. `If-None-Match` with the ETag answers 304. Drafts and rolled-back releases are not downloadable by users (404).',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: {
          200: BinarySchema('The whole image.'),
          206: BinarySchema('The requested byte range (`Content-Range: bytes start-end/size`).'),
          304: Type.Null({ description: 'Not modified (If-None-Match matched the ETag).' }),
          ...errorResponses(400, 401, 404, 416),
        },
      },
    },
    async function downloadFirmware(request, reply) {
      const release = await repo.get(request.params.id)
      if (!release || (request.user.role !== 'admin' && HIDDEN_FROM_USERS.has(release.status))) {
        throw errors.notFound('No such firmware release.')
      }
      const etag = `"${release.sha256}"`
      const digest = Buffer.from(release.sha256, 'hex').toString('base64')
      reply.headers({
        etag,
        'accept-ranges': 'bytes',
        digest: `sha-256=${digest}`,
        'repr-digest': `sha-256=:${digest}:`,
        'cache-control': 'private, no-transform',
      })
      if (matchesEtag(request.headers['if-none-match'], etag)) return reply.status(304).send(null)

      const size = release.sizeBytes
      const ifRange = request.headers['if-range']
      const range = ifRange === undefined || ifRange === etag ? parseRange(request.headers.range, size) : null
      if (range === 'unsatisfiable') {
        reply.header('content-range', `bytes */${size}`)
        throw new AppError(416, 'range_not_satisfiable', `The range is not within the image (${size} bytes).`)
      }
      const file = await storage.open(release.id)
      if (!file || file.size !== size) {
        await file?.handle.close()
        throw new Error(`firmware file of release ${release.id} is missing or has the wrong size`)
      }
      const start = range?.start ?? 0
      const end = range?.end ?? size - 1
      reply
        .status(range ? 206 : 200)
        .type('application/octet-stream')
        .headers({
          'content-length': String(Math.max(0, end - start + 1)),
          'content-disposition': `attachment; filename="${release.hardwareModel}-${release.version}.bin"`,
        })
      if (range) reply.header('content-range', `bytes ${start}-${end}/${size}`)
      // The body is a stream, not a value of the response schema: sent through the untyped reply.
      const untyped = reply as unknown as FastifyReply
      if (size === 0) {
        await file.handle.close()
        return untyped.send(Buffer.alloc(0))
      }
      // 64 KiB chunks, read as the socket drains: memory stays flat however large the image or slow the phone.
      return untyped.send(file.handle.createReadStream({ start, end, highWaterMark: 64 * 1024 }))
    },
  )

  app.post(
    '/firmware/:id/reports',
    {
      onRequest: app.authenticate,
      config: { rateLimit: { max: 120, timeWindow: 60_000 } },
      schema: {
        tags: ['firmware'],
        summary: 'Report the outcome of an install',
        description:
          'One outcome per device and release: reporting again replaces the earlier outcome. When, since the release was published or last resumed, at least FIRMWARE_HALT_MIN_REPORTS users (default 20) have reported and more than FIRMWARE_HALT_FAILURE_RATE of them (default 0.2) report a failure, the rollout halts itself: nobody new is offered it.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        body: ReportBodySchema,
        response: { 200: ReportSchema, ...errorResponses(400, 401, 404, 413, 415, 429) },
      },
    },
    async function reportInstall(request) {
      const body = request.body
      if (body.outcome === 'failure' && !body.reason) {
        throw errors.validation([{ field: 'reason', problem: 'is required when the outcome is failure' }])
      }
      if (body.from_version && !parseVersion(body.from_version)) {
        throw errors.validation([{ field: 'from_version', problem: 'is not a semantic version' }])
      }
      const release = await repo.get(request.params.id)
      if (!release || release.status === 'draft') throw errors.notFound('No such firmware release.')
      const { config } = app
      return app.db.transaction(async (tx) => {
        const report = await repo.upsertReport(
          {
            releaseId: release.id,
            userId: request.user.sub,
            deviceId: body.device_id,
            outcome: body.outcome,
            reason: body.outcome === 'failure' ? (body.reason ?? null) : null,
            fromVersion: body.from_version ?? null,
          },
          tx,
        )
        if (body.outcome === 'failure') {
          const halted = await repo.haltIfFailing(
            release.id,
            config.FIRMWARE_HALT_FAILURE_RATE,
            config.FIRMWARE_HALT_MIN_REPORTS,
            tx,
          )
          if (halted) {
            await app.audit.record(
              systemActor(request),
              {
                action: 'firmware.halt',
                targetType: 'firmware_release',
                targetId: release.id,
                details: { automatic: true, reporting_users: halted.users, failing_users: halted.failing },
              },
              tx,
            )
            request.log.warn({ releaseId: release.id, ...halted }, 'firmware rollout halted automatically')
          }
        }
        return toReport(report)
      })
    },
  )
}

/** The automatic halt is the server's own action, not the reporting user's: recorded with no actor. */
function systemActor(request: FastifyRequest): FastifyRequest {
  return { ip: request.ip, user: undefined } as unknown as FastifyRequest
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header
    .split(',')
    .map((s) => s.trim().replace(/^W\//, ''))
    .some((tag) => tag === etag || tag === '*')
}

export default firmwareRoutes
