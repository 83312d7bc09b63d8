import type { Db } from '../../db/client.ts'
import { exportRows as exportActivityRows } from '../activity/index.ts'
import { createHistoryRepository } from '../auth/history-repository.ts'
import { createSessionRepository } from '../auth/session-repository.ts'
import { exportRows as exportCheckinRows } from '../checkin/repository.ts'
import { exportRows as exportDayFeedbackRows } from '../day-feedback/repository.ts'
import { exportRows as exportFirmwareReportRows } from '../firmware/repository.ts'
import { exportRows as exportInsightRows } from '../insight/repository.ts'
import { exportRows as exportIntentionRows } from '../intention/index.ts'
import { exportRows as exportMeasurementRows } from '../measurement/repository.ts'
import { createMfaRepository } from '../mfa/repository.ts'
import { exportAuthorizationRows } from '../oauth/authorizations.ts'
import { createGroupRepository } from '../sharing/group-repository.ts'
import { createSharingRepository } from '../sharing/repository.ts'
import { exportRows as exportSleepRows } from '../sleep/repository.ts'
import { exportRows as exportTelemetryRows } from '../telemetry/repository.ts'
import { createUserRepository } from '../user/repository.ts'

export type ExportRow = Record<string, unknown>

/**
 * One section of the account export: a name (the key in `sections`) and the user's rows as plain
 * snake_case objects. `rows` must read in keyset-paginated batches (see `keysetRows` in db/keyset.ts), never the
 * whole table at once: the export streams, and a user may have millions of rows.
 */
export interface ExportSection {
  name: string
  rows(db: Db, userId: string): AsyncIterable<ExportRow>
}

async function* profileRows(db: Db, userId: string): AsyncGenerator<ExportRow> {
  const u = await createUserRepository(db).findById(userId)
  if (!u) return
  yield {
    id: u.id,
    email: u.email,
    role: u.role,
    first_name: u.firstName,
    last_name: u.lastName,
    date_of_birth: u.dateOfBirth,
    sex: u.sex,
    weight: u.weight,
    height: u.height,
    sleep_time_goal: u.sleepTimeGoal,
    tip_audiences: u.tipAudiences,
    time_zone: u.timeZone,
    email_verified_at: u.emailVerifiedAt?.toISOString() ?? null,
    toc_accepted_at: u.tocAcceptedAt.toISOString(),
    privacy_policy_accepted_at: u.privacyPolicyAcceptedAt.toISOString(),
    disabled_at: u.disabledAt?.toISOString() ?? null,
    created: u.createdAt.toISOString(),
    updated: u.updatedAt.toISOString(),
  }
}

/**
 * Every section of the export, in document order. A domain adds its data with one line here,
 * e.g. `{ name: 'measurements', rows: exportMeasurementRows }`.
 */
export const exportSections: ExportSection[] = [
  { name: 'profile', rows: profileRows },
  { name: 'settings', rows: (db, userId) => createUserRepository(db).exportSettingRows(userId) },
  { name: 'sessions', rows: (db, userId) => createSessionRepository(db).exportRows(userId) },
  { name: 'auth_history', rows: (db, userId) => createHistoryRepository(db).exportRows(userId) },
  { name: 'measurements', rows: (db, userId) => exportMeasurementRows(db, userId) as AsyncIterable<ExportRow> },
  { name: 'sleep', rows: (db, userId) => exportSleepRows(db, userId) as AsyncIterable<ExportRow> },
  { name: 'shares', rows: (db, userId) => createSharingRepository(db).exportRows(userId) },
  { name: 'groups', rows: (db, userId) => createGroupRepository(db).exportRows(userId) },
  { name: 'telemetry', rows: (db, userId) => exportTelemetryRows(db, userId) },
  { name: 'firmware_install_reports', rows: (db, userId) => exportFirmwareReportRows(db, userId) },
  { name: 'checkins', rows: (db, userId) => exportCheckinRows(db, userId) },
  { name: 'day_feedback', rows: (db, userId) => exportDayFeedbackRows(db, userId) },
  { name: 'activities', rows: (db, userId) => exportActivityRows(db, userId) },
  { name: 'intentions', rows: (db, userId) => exportIntentionRows(db, userId) },
  { name: 'insights', rows: (db, userId) => exportInsightRows(db, userId) },
  { name: 'second_factors', rows: (db, userId) => createMfaRepository(db).exportRows(userId) },
  { name: 'oauth_authorizations', rows: (db, userId) => exportAuthorizationRows(db, userId) },
]
