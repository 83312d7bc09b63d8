import type { Readable } from 'node:stream'
import type { Static } from '@sinclair/typebox'
import type { Db, DbOrTx } from '../../db/client.ts'
import type { AuditEntry } from '../../plugins/audit.ts'
import { AppError, errors } from '../../plugins/errors.ts'
import type { FirmwareRepository, ReleaseRow, ReportCounts, ReportRow } from './repository.ts'
import type { AdminReleaseSchema, ReleaseSchema, ReportSchema, UpdateSchema, UploadQuery } from './schemas.ts'
import { type FirmwareStorage, type ReceivedFile, tooLarge } from './storage.ts'
import { inCohort, parseVersion, semver, versionKey } from './versions.ts'

export const downloadPath = (id: string) => `/v1/firmware/${id}/download`

export function toRelease(row: ReleaseRow): Static<typeof ReleaseSchema> {
  return {
    id: row.id,
    hardware_model: row.hardwareModel,
    version: row.version,
    channel: row.channel,
    size: row.sizeBytes,
    sha256: row.sha256,
    release_notes: row.releaseNotes,
    min_version: row.minVersion,
    mandatory: row.mandatory,
    published_at: row.publishedAt?.toISOString() ?? null,
    download_path: downloadPath(row.id),
  }
}

export function toAdminRelease(row: ReleaseRow, counts: ReportCounts): Static<typeof AdminReleaseSchema> {
  return {
    ...toRelease(row),
    status: row.status,
    rollout_percentage: row.rolloutPercentage,
    uploaded_by: row.uploadedBy,
    rollback_target_id: row.rollbackTargetId,
    halted_at: row.haltedAt?.toISOString() ?? null,
    halt_reason: row.haltReason,
    install_reports: counts,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export function toReport(row: ReportRow): Static<typeof ReportSchema> {
  return {
    id: row.id,
    release_id: row.releaseId,
    device_id: row.deviceId,
    outcome: row.outcome,
    reason: row.reason,
    from_version: row.fromVersion,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export const channelsFor = (channel: 'stable' | 'beta') =>
  channel === 'beta' ? (['stable', 'beta'] as const) : (['stable'] as const)

/**
 * The update to offer a device: the highest published release above the installed version whose rollout
 * cohort holds the user and whose minimum version the device meets (so a device too old for the newest
 * release is offered the highest stepping stone it can take). When none, and the installed version was
 * rolled back, the release chosen at rollback. Null: no update.
 */
export async function findUpdate(
  repo: FirmwareRepository,
  query: { hardware: string; currentVersion: string; channel: 'stable' | 'beta'; userId: string },
): Promise<Static<typeof UpdateSchema> | null> {
  const current = parseVersion(query.currentVersion)
  if (!current) return null
  const candidates = await repo.published(query.hardware, [...channelsFor(query.channel)], {
    aboveKey: versionKey(current),
  })
  const target = candidates.find(
    (r) =>
      inCohort(r.id, query.userId, r.rolloutPercentage) &&
      (r.minVersion === null || semver.gte(current, r.minVersion)) &&
      // The key already orders by precedence; semver re-checks it, so a bad key can never offer a downgrade.
      semver.gt(r.version, current),
  )
  if (target) {
    // Skipping a mandatory release on the way makes the jump mandatory too.
    const mandatory = candidates.some((r) => r.mandatory && semver.lte(r.version, target.version))
    return { ...toRelease(target), mandatory, rollback: false }
  }
  const back = await repo.rollbackFor(query.hardware, versionKey(current))
  if (back) return { ...toRelease(back), mandatory: true, rollback: true }
  return null
}

/** The minimum version must be a real version below the release's own. */
export function checkMinVersion(minVersion: string | null | undefined, version: string, field: string) {
  if (minVersion === null || minVersion === undefined) return
  const min = parseVersion(minVersion)
  if (!min) throw errors.validation([{ field, problem: 'is not a semantic version' }])
  if (!semver.lt(min, version)) throw errors.validation([{ field, problem: 'must be lower than the version' }])
}

export function versionExists(model: string, version: string) {
  return errors.conflict('firmware_version_exists', `${model} already has a release ${version}.`)
}

/**
 * A new draft release from an uploaded image: checks the version, streams the image to a temp file
 * (at most `maxBytes`), inserts the row and its audit entry in one transaction, then moves the file into
 * place. An interrupted or failed upload leaves no release and no file.
 */
export async function uploadRelease(
  ctx: { db: Db; repo: FirmwareRepository; storage: FirmwareStorage; maxBytes: number },
  q: UploadQuery,
  image: { body: Readable; announcedBytes: number; aborted: (err: unknown) => boolean },
  by: { uploadedBy: string; audit: (entry: Omit<AuditEntry, 'targetType'>, tx: DbOrTx) => Promise<void> },
): Promise<ReleaseRow> {
  const { db, repo, storage, maxBytes } = ctx
  const version = parseVersion(q.version)
  if (!version) throw errors.validation([{ field: 'query.version', problem: 'is not a semantic version' }])
  checkMinVersion(q.min_version, q.version, 'query.min_version')
  const key = versionKey(version)
  // Refuse early what would fail anyway, before the client sends hundreds of megabytes.
  if (await repo.existsVersion(q.hardware_model, key)) throw versionExists(q.hardware_model, q.version)
  if (image.announcedBytes > maxBytes) throw tooLarge(maxBytes)

  let received: ReceivedFile
  try {
    received = await storage.receive(image.body, maxBytes)
  } catch (err) {
    if (!(err instanceof AppError) && image.aborted(err)) {
      throw errors.badRequest('upload_aborted', 'The upload was interrupted.')
    }
    throw err
  }
  try {
    if (received.size === 0) throw errors.badRequest('empty_firmware', 'The request body (the image) is empty.')
    const row = await db.transaction(async (tx) => {
      const inserted = await repo.insert(
        {
          hardwareModel: q.hardware_model,
          version: q.version,
          versionKey: key,
          channel: q.channel ?? 'stable',
          releaseNotes: q.release_notes ?? '',
          minVersion: q.min_version ?? null,
          mandatory: q.mandatory ?? false,
          rolloutPercentage: q.rollout_percentage ?? 100,
          sizeBytes: received.size,
          sha256: received.sha256,
          uploadedBy: by.uploadedBy,
        },
        tx,
      )
      if (!inserted) throw versionExists(q.hardware_model, q.version)
      await by.audit(
        {
          action: 'firmware.upload',
          targetId: inserted.id,
          details: {
            hardware_model: inserted.hardwareModel,
            version: inserted.version,
            size: inserted.sizeBytes,
            sha256: inserted.sha256,
          },
        },
        tx,
      )
      return inserted
    })
    try {
      await storage.commit(received.tempPath, row.id)
    } catch (err) {
      // The row must not outlive a file that never arrived.
      await db.transaction(async (tx) => {
        await repo.deleteDraft(row.id, tx)
        await by.audit({ action: 'firmware.upload_failed', targetId: row.id }, tx)
      })
      throw err
    }
    return row
  } finally {
    await storage.discard(received.tempPath)
  }
}
