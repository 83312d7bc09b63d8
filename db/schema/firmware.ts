import { sql } from 'drizzle-orm'
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/**
 * Byte-order text: the semantic-version sort key must compare byte by byte, whatever the
 * database's default collation (a locale collation would ignore the punctuation the key relies on).
 */
const byteOrderText = customType<{ data: string }>({
  dataType() {
    return 'text COLLATE "C"'
  },
})

export const FIRMWARE_CHANNELS = ['stable', 'beta'] as const
export const FIRMWARE_STATUSES = ['draft', 'published', 'halted', 'deprecated', 'rolled_back'] as const

/**
 * A firmware image for one hardware model. The file lives in FIRMWARE_DIR as `<id>.bin`; it belongs to the
 * company, so the uploader's account may go (uploaded_by set null) without taking the release with it.
 */
export const firmwareReleases = pgTable(
  'firmware_releases',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    hardwareModel: text('hardware_model').notNull(),
    version: text('version').notNull(),
    /** See routes/firmware/semver-key.ts: orders like semver precedence (1.10.0 > 1.9.0 > 1.9.0-rc.1). */
    versionKey: byteOrderText('version_key').notNull(),
    channel: text('channel', { enum: FIRMWARE_CHANNELS }).notNull(),
    status: text('status', { enum: FIRMWARE_STATUSES }).notNull().default('draft'),
    releaseNotes: text('release_notes').notNull().default(''),
    minVersion: text('min_version'),
    mandatory: boolean('mandatory').notNull().default(false),
    rolloutPercentage: integer('rollout_percentage').notNull().default(100),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    uploadedBy: uuid('uploaded_by').references(() => users.id, { onDelete: 'set null' }),
    rollbackTargetId: uuid('rollback_target_id').references((): AnyPgColumn => firmwareReleases.id, {
      onDelete: 'set null',
    }),
    publishedAt: timestamp('published_at', { withTimezone: true, precision: 3 }),
    /** Install reports older than this do not count towards an automatic halt (set at publish and resume). */
    rolloutEpochAt: timestamp('rollout_epoch_at', { withTimezone: true, precision: 3 }),
    haltedAt: timestamp('halted_at', { withTimezone: true, precision: 3 }),
    haltReason: text('halt_reason'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('firmware_releases_model_version_key').on(t.hardwareModel, t.versionKey),
    index('firmware_releases_offer_idx').on(t.hardwareModel, t.status, t.versionKey),
    index('firmware_releases_created_idx').on(t.createdAt, t.id),
    check('firmware_releases_rollout_range', sql`${t.rolloutPercentage} between 0 and 100`),
    check('firmware_releases_size_nonnegative', sql`${t.sizeBytes} >= 0`),
    check('firmware_releases_sha256_hex', sql`${t.sha256} ~ '^[0-9a-f]{64}$'`),
    check('firmware_releases_not_own_rollback', sql`${t.rollbackTargetId} is distinct from ${t.id}`),
  ],
)

/**
 * The outcome of an install, one row per (release, user, device): a device that reports again replaces
 * its earlier outcome, so retries do not count twice.
 */
export const firmwareInstallReports = pgTable(
  'firmware_install_reports',
  {
    id: uuid('id').notNull().defaultRandom(),
    releaseId: uuid('release_id')
      .notNull()
      .references(() => firmwareReleases.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    deviceId: text('device_id').notNull(),
    outcome: text('outcome', { enum: ['success', 'failure'] }).notNull(),
    reason: text('reason'),
    fromVersion: text('from_version'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by user_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ columns: [t.userId, t.id] }),
    uniqueIndex('firmware_install_reports_device_key').on(t.userId, t.releaseId, t.deviceId),
    index('firmware_install_reports_release_idx').on(t.releaseId, t.updatedAt),
    index('firmware_install_reports_user_idx').on(t.userId, t.createdAt, t.id),
  ],
)
