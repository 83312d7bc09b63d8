import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { AppError, errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  IdParamsSchema,
  PageSchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { firmwareDir } from '../firmware/index.ts'
import {
  type NewRelease,
  type ReleaseRow,
  type ReleaseStatus,
  createFirmwareRepository,
} from '../firmware/repository.ts'
import {
  AdminListQuerySchema,
  AdminReleaseSchema,
  PatchBodySchema,
  RolloutBodySchema,
  UploadQuerySchema,
} from '../firmware/schemas.ts'
import { checkMinVersion, toAdminRelease, uploadRelease } from '../firmware/service.ts'
import { createFirmwareStorage } from '../firmware/storage.ts'

const TARGET = 'firmware_release'

function isAborted(request: FastifyRequest, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return request.raw.aborted || request.raw.destroyed || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE'
}

const adminFirmwareRoutes: FastifyPluginAsyncTypebox = async function adminFirmwareRoutes(app) {
  const repo = createFirmwareRepository(app.db)
  const storage = createFirmwareStorage(firmwareDir(app.config))
  await storage.init()
  const maxBytes = app.config.FIRMWARE_MAX_BYTES

  // Every route here is for administrators (the routes/admin convention: one hook per plugin).
  app.addHook('onRequest', app.requireAdmin)

  // The image is the raw request body. The parser leaves the stream unread, so the handler streams it to
  // disk (BODY_LIMIT does not apply; FIRMWARE_MAX_BYTES does). Only this plugin sees this parser.
  app.addContentTypeParser('application/octet-stream', function keepStream(_request, _payload, done) {
    done(null)
  })

  async function countsFor(rows: ReleaseRow[]) {
    return repo.reportCounts(rows.map((r) => r.id))
  }
  async function present(row: ReleaseRow) {
    return toAdminRelease(row, repo.countsOf(await countsFor([row]), row.id))
  }
  async function mustGet(id: string) {
    const row = await repo.get(id)
    if (!row) throw errors.notFound('No such firmware release.')
    return row
  }

  app.post(
    '/admin/firmware',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'Upload a firmware image as a new draft',
        description:
          'The body is the image itself (`Content-Type: application/octet-stream`), streamed to FIRMWARE_DIR while its SHA-256 and size are computed; the metadata is in the query string. More than FIRMWARE_MAX_BYTES (default 256 MiB) answers 413 `firmware_too_large`; a model that already has this version (semver precedence, build metadata ignored) answers 409 `firmware_version_exists`; an empty body answers 400 `empty_firmware`. An interrupted upload leaves no release and no file. The release starts as a `draft`.',
        security: SECURITY.bearer,
        querystring: UploadQuerySchema,
        // The stream is read by the handler; this schema only documents it (nothing to validate before).
        body: {
          content: {
            'application/octet-stream': {
              schema: Type.Unsafe<unknown>({ format: 'binary', description: 'The firmware image.' }),
            },
          },
        },
        response: { 201: AdminReleaseSchema, ...errorResponses(400, 401, 403, 409, 413, 415) },
      },
    },
    async function uploadFirmware(request, reply) {
      const mediaType = request.headers['content-type']?.split(';')[0].trim().toLowerCase()
      if (mediaType !== 'application/octet-stream') {
        throw new AppError(415, 'unsupported_media_type', 'Send the image as application/octet-stream.')
      }
      try {
        const row = await uploadRelease(
          { db: app.db, repo, storage, maxBytes },
          request.query,
          {
            body: request.raw,
            announcedBytes: Number(request.headers['content-length'] ?? Number.NaN),
            aborted: (err) => isAborted(request, err),
          },
          {
            uploadedBy: request.user.sub,
            audit: (entry, tx) => app.audit.record(request, { ...entry, targetType: TARGET }, tx),
          },
        )
        return reply.status(201).send(await present(row))
      } catch (err) {
        // The rest of the body is not read: close the connection once the 413 is sent.
        if (err instanceof AppError && err.code === 'firmware_too_large') reply.header('connection', 'close')
        throw err
      }
    },
  )

  app.get(
    '/admin/firmware',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'List firmware releases, newest upload first',
        security: SECURITY.bearer,
        querystring: AdminListQuerySchema,
        response: { 200: PageSchema(AdminReleaseSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async function listReleases(request) {
      const { cursor, hardware, status, channel } = request.query
      const after = decodeTimeCursor(cursor)
      const page = await keysetPage(
        request.query,
        (take) => repo.adminPage({ hardware, status, channel }, take, after),
        (r) => r,
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
      // The install report counts of the whole page in one query.
      const counts = await countsFor(page.data)
      return { ...page, data: page.data.map((r) => toAdminRelease(r, repo.countsOf(counts, r.id))) }
    },
  )

  app.get(
    '/admin/firmware/:id',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'A firmware release with its install report counts',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: AdminReleaseSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async function getRelease(request) {
      return present(await mustGet(request.params.id))
    },
  )

  app.patch(
    '/admin/firmware/:id',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'Edit a release’s metadata',
        description:
          'Release notes, minimum version (null: any), mandatory flag and channel. The image, model and version cannot change: upload a new version instead.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        body: PatchBodySchema,
        response: { 200: AdminReleaseSchema, ...errorResponses(400, 401, 403, 404, 413, 415) },
      },
    },
    async function patchRelease(request) {
      const current = await mustGet(request.params.id)
      const b = request.body
      checkMinVersion(b.min_version, current.version, 'min_version')
      const values: Partial<NewRelease> = {
        releaseNotes: b.release_notes,
        minVersion: b.min_version,
        mandatory: b.mandatory,
        channel: b.channel,
      }
      const row = await app.db.transaction(async (tx) => {
        const updated = await repo.update(current.id, values, tx)
        if (!updated) throw errors.notFound('No such firmware release.')
        await app.audit.record(
          request,
          { action: 'firmware.update', targetType: TARGET, targetId: current.id, details: { fields: Object.keys(b) } },
          tx,
        )
        return updated
      })
      return present(row)
    },
  )

  app.put(
    '/admin/firmware/:id/rollout',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'Set the rollout percentage (0–100)',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        body: RolloutBodySchema,
        response: { 200: AdminReleaseSchema, ...errorResponses(400, 401, 403, 404, 413, 415) },
      },
    },
    async function setRollout(request) {
      const current = await mustGet(request.params.id)
      const pct = request.body.rollout_percentage
      const row = await app.db.transaction(async (tx) => {
        const updated = await repo.update(current.id, { rolloutPercentage: pct }, tx)
        if (!updated) throw errors.notFound('No such firmware release.')
        await app.audit.record(
          request,
          {
            action: 'firmware.rollout',
            targetType: TARGET,
            targetId: current.id,
            details: { from: current.rolloutPercentage, to: pct },
          },
          tx,
        )
        return updated
      })
      return present(row)
    },
  )

  interface Transition {
    path: string
    action: string
    summary: string
    description: string
    from: ReleaseStatus[]
    to: ReleaseStatus
    /** Extra columns to set; may refuse (throw) after looking at the release. */
    values: (release: ReleaseRow) => Promise<Partial<NewRelease>>
  }

  const now = () => new Date()
  const transitions: Transition[] = [
    {
      path: 'publish',
      action: 'firmware.publish',
      summary: 'Publish a draft',
      description: 'draft → published: offered to the users inside its rollout percentage.',
      from: ['draft'],
      to: 'published',
      values: async () => ({ publishedAt: now(), rolloutEpochAt: now() }),
    },
    {
      path: 'deprecate',
      action: 'firmware.deprecate',
      summary: 'Deprecate a release',
      description: 'published or halted → deprecated: no longer offered, still downloadable.',
      from: ['published', 'halted'],
      to: 'deprecated',
      values: async () => ({}),
    },
    {
      path: 'halt',
      action: 'firmware.halt',
      summary: 'Halt a rollout',
      description:
        'published → halted: nobody new is offered it. The server does the same by itself when too many installs fail.',
      from: ['published'],
      to: 'halted',
      values: async () => ({ haltedAt: now(), haltReason: 'halted by an administrator' }),
    },
    {
      path: 'resume',
      action: 'firmware.resume',
      summary: 'Resume a halted rollout',
      description:
        'halted → published. Install reports made before the resume no longer count towards an automatic halt.',
      from: ['halted'],
      to: 'published',
      values: async () => ({ rolloutEpochAt: now(), haltedAt: null, haltReason: null }),
    },
    {
      path: 'rollback',
      action: 'firmware.rollback',
      summary: 'Roll back a release',
      description:
        'published or halted → rolled_back: nobody is offered it any more, and devices running it are offered the previous release of the model and channel (the highest published or deprecated version below it) as their update. 409 `no_previous_release` when there is none.',
      from: ['published', 'halted'],
      to: 'rolled_back',
      values: async (release) => {
        const previous = await repo.previousRelease(release)
        if (!previous) throw errors.conflict('no_previous_release', 'There is no earlier release to roll back to.')
        return { rollbackTargetId: previous.id }
      },
    },
  ]

  for (const step of transitions) {
    app.post(
      `/admin/firmware/:id/${step.path}`,
      {
        schema: {
          tags: ['admin-firmware'],
          summary: step.summary,
          description: `${step.description} From another status: 409 \`invalid_status\`.`,
          security: SECURITY.bearer,
          params: IdParamsSchema,
          response: { 200: AdminReleaseSchema, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async function changeStatus(request) {
        const current = await mustGet(request.params.id)
        const refuse = () =>
          errors.conflict('invalid_status', `A ${current.status} release cannot be changed this way (${step.path}).`)
        if (!step.from.includes(current.status)) throw refuse()
        const values = await step.values(current)
        const row = await app.db.transaction(async (tx) => {
          const moved = await repo.transition(current.id, step.from, step.to, values, tx)
          // Someone else changed it in between.
          if (!moved) throw refuse()
          await app.audit.record(
            request,
            {
              action: step.action,
              targetType: TARGET,
              targetId: current.id,
              details: {
                from: current.status,
                to: step.to,
                ...(values.rollbackTargetId ? { target_id: values.rollbackTargetId } : {}),
              },
            },
            tx,
          )
          return moved
        })
        return present(row)
      },
    )
  }

  app.delete(
    '/admin/firmware/:id',
    {
      schema: {
        tags: ['admin-firmware'],
        summary: 'Delete a draft and its file',
        description:
          'Only drafts: a release once published stays on record (deprecate it). 409 `not_a_draft` otherwise.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async function deleteDraft(request) {
      const current = await mustGet(request.params.id)
      if (current.status !== 'draft') throw errors.conflict('not_a_draft', 'Only a draft can be deleted.')
      await app.db.transaction(async (tx) => {
        const deleted = await repo.deleteDraft(current.id, tx)
        if (!deleted) throw errors.conflict('not_a_draft', 'Only a draft can be deleted.')
        await app.audit.record(
          request,
          {
            action: 'firmware.delete',
            targetType: TARGET,
            targetId: current.id,
            details: { hardware_model: current.hardwareModel, version: current.version },
          },
          tx,
        )
      })
      // After the commit: a failed delete must not leave a row without its file.
      await storage.remove(current.id)
      return SUCCESS
    },
  )
}

export default adminFirmwareRoutes
