import type { Static } from '@sinclair/typebox'
import type { FirmwareRepository, ReleaseRow, ReportCounts, ReportRow } from './repository.ts'
import type { AdminReleaseSchema, ReleaseSchema, ReportSchema, UpdateSchema } from './schemas.ts'
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
  const candidates = await repo.publishedAbove(query.hardware, [...channelsFor(query.channel)], versionKey(current))
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
