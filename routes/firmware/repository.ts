import { and, asc, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { firmwareInstallReports, firmwareReleases } from '../../db/schema/index.ts'

export type ReleaseRow = typeof firmwareReleases.$inferSelect
export type NewRelease = typeof firmwareReleases.$inferInsert
export type ReleaseStatus = ReleaseRow['status']
export type Channel = ReleaseRow['channel']
export type ReportRow = typeof firmwareInstallReports.$inferSelect

export interface ReportCounts {
  total: number
  success: number
  failure: number
  reporting_users: number
  failing_users: number
}

const NO_REPORTS: ReportCounts = { total: 0, success: 0, failure: 0, reporting_users: 0, failing_users: 0 }

export interface AdminListFilter {
  hardware?: string
  status?: ReleaseStatus
  channel?: Channel
}

/** The one repository of the firmware and admin-firmware domains. */
export function createFirmwareRepository(db: Db) {
  return {
    async get(id: string, tx?: DbOrTx): Promise<ReleaseRow | null> {
      const [row] = await (tx ?? db).select().from(firmwareReleases).where(eq(firmwareReleases.id, id)).limit(1)
      return row ?? null
    },

    async existsVersion(hardwareModel: string, versionKey: string): Promise<boolean> {
      const [row] = await db
        .select({ id: firmwareReleases.id })
        .from(firmwareReleases)
        .where(and(eq(firmwareReleases.hardwareModel, hardwareModel), eq(firmwareReleases.versionKey, versionKey)))
        .limit(1)
      return Boolean(row)
    },

    /** Inserts a draft; null when the model already has this version (the unique key decides, not a pre-check). */
    async insert(values: NewRelease, tx?: DbOrTx): Promise<ReleaseRow | null> {
      const rows = await (tx ?? db).insert(firmwareReleases).values(values).onConflictDoNothing().returning()
      return rows[0] ?? null
    },

    async update(id: string, values: Partial<NewRelease>, tx?: DbOrTx): Promise<ReleaseRow | null> {
      const [row] = await (tx ?? db)
        .update(firmwareReleases)
        .set({ ...values, updatedAt: sql`now()` })
        .where(eq(firmwareReleases.id, id))
        .returning()
      return row ?? null
    },

    /** Moves a release to `to` only from one of `from`; null when its status was something else. */
    async transition(
      id: string,
      from: ReleaseStatus[],
      to: ReleaseStatus,
      values: Partial<NewRelease>,
      tx?: DbOrTx,
    ): Promise<ReleaseRow | null> {
      const [row] = await (tx ?? db)
        .update(firmwareReleases)
        .set({ ...values, status: to, updatedAt: sql`now()` })
        .where(and(eq(firmwareReleases.id, id), inArray(firmwareReleases.status, from)))
        .returning()
      return row ?? null
    },

    async deleteDraft(id: string, tx?: DbOrTx): Promise<ReleaseRow | null> {
      const [row] = await (tx ?? db)
        .delete(firmwareReleases)
        .where(and(eq(firmwareReleases.id, id), eq(firmwareReleases.status, 'draft')))
        .returning()
      return row ?? null
    },

    /** Admin list, newest upload first, keyset on (created_at, id). */
    async adminPage(filter: AdminListFilter, limit: number, after?: { at: Date; id: string }) {
      const t = firmwareReleases
      return db
        .select()
        .from(t)
        .where(
          and(
            filter.hardware ? eq(t.hardwareModel, filter.hardware) : undefined,
            filter.status ? eq(t.status, filter.status) : undefined,
            filter.channel ? eq(t.channel, filter.channel) : undefined,
            keysetAfter(t.createdAt, t.id, after),
          ),
        )
        .orderBy(desc(t.createdAt), desc(t.id))
        .limit(limit)
    },

    /**
     * Published releases of a model on these channels, highest version first: a page below `belowKey`
     * (keyset on the version key, unique per model), or every one above `aboveKey` (the update candidates).
     */
    async published(
      hardwareModel: string,
      channels: Channel[],
      range: { belowKey?: string; aboveKey?: string; limit?: number },
    ) {
      const t = firmwareReleases
      const query = db
        .select()
        .from(t)
        .where(
          and(
            eq(t.hardwareModel, hardwareModel),
            eq(t.status, 'published'),
            inArray(t.channel, channels),
            range.belowKey ? lt(t.versionKey, range.belowKey) : undefined,
            range.aboveKey ? gt(t.versionKey, range.aboveKey) : undefined,
          ),
        )
        .orderBy(desc(t.versionKey))
        .$dynamic()
      return range.limit === undefined ? query : query.limit(range.limit)
    },

    /** The rolled-back release a device is running, with the release it should go back to. */
    async rollbackFor(hardwareModel: string, versionKey: string) {
      const t = firmwareReleases
      const [row] = await db
        .select()
        .from(t)
        .where(and(eq(t.hardwareModel, hardwareModel), eq(t.versionKey, versionKey), eq(t.status, 'rolled_back')))
        .limit(1)
      if (!row?.rollbackTargetId) return null
      const target = await this.get(row.rollbackTargetId)
      return target && (target.status === 'published' || target.status === 'deprecated') ? target : null
    },

    /** The highest released (published or deprecated) version of the model and channel below a version. */
    async previousRelease(release: ReleaseRow, tx?: DbOrTx): Promise<ReleaseRow | null> {
      const t = firmwareReleases
      const [row] = await (tx ?? db)
        .select()
        .from(t)
        .where(
          and(
            eq(t.hardwareModel, release.hardwareModel),
            eq(t.channel, release.channel),
            inArray(t.status, ['published', 'deprecated']),
            lt(t.versionKey, release.versionKey),
          ),
        )
        .orderBy(desc(t.versionKey))
        .limit(1)
      return row ?? null
    },

    /** A device's outcome for a release; a second report from the same device replaces the first. */
    async upsertReport(
      values: {
        releaseId: string
        userId: string
        deviceId: string
        outcome: 'success' | 'failure'
        reason: string | null
        fromVersion: string | null
      },
      tx?: DbOrTx,
    ): Promise<ReportRow> {
      const [row] = await (tx ?? db)
        .insert(firmwareInstallReports)
        .values(values)
        .onConflictDoUpdate({
          target: [firmwareInstallReports.releaseId, firmwareInstallReports.userId, firmwareInstallReports.deviceId],
          set: {
            outcome: values.outcome,
            reason: values.reason,
            fromVersion: values.fromVersion,
            updatedAt: sql`now()`,
          },
        })
        .returning()
      return row
    },

    /**
     * Halts a published release when, among users reporting since it was published (or last resumed),
     * at least `minUsers` reported and more than `maxRate` of them report a failure. Users, not devices,
     * are counted, so one account cannot halt a rollout by inventing device ids. One statement: two
     * concurrent reports cannot both halt it, and neither needs a lock.
     */
    async haltIfFailing(releaseId: string, maxRate: number, minUsers: number, tx?: DbOrTx) {
      const rows = await queryRows<{ users: number; failing: number }>(
        tx ?? db,
        sql`with stats as (
              select count(distinct r.user_id)::int as users,
                     (count(distinct r.user_id) filter (where r.outcome = 'failure'))::int as failing
                from firmware_install_reports r
                join firmware_releases f on f.id = r.release_id
               where r.release_id = ${releaseId}
                 and r.updated_at >= coalesce(f.rollout_epoch_at, f.created_at)
            )
            update firmware_releases f
               set status = 'halted', halted_at = now(), updated_at = now(),
                   halt_reason = 'automatic: ' || stats.failing || ' of ' || stats.users || ' reporting users failed to install'
              from stats
             where f.id = ${releaseId} and f.status = 'published'
               and stats.users >= ${minUsers}
               and stats.failing::float8 / stats.users > ${maxRate}
         returning stats.users, stats.failing`,
      )
      return rows[0] ?? null
    },

    /** Install report counts per release (all time). */
    async reportCounts(releaseIds: string[]): Promise<Map<string, ReportCounts>> {
      const counts = new Map<string, ReportCounts>()
      if (releaseIds.length === 0) return counts
      const r = firmwareInstallReports
      const rows = await db
        .select({
          releaseId: r.releaseId,
          total: sql<number>`count(*)::int`,
          success: sql<number>`(count(*) filter (where ${r.outcome} = 'success'))::int`,
          failure: sql<number>`(count(*) filter (where ${r.outcome} = 'failure'))::int`,
          reportingUsers: sql<number>`count(distinct ${r.userId})::int`,
          failingUsers: sql<number>`(count(distinct ${r.userId}) filter (where ${r.outcome} = 'failure'))::int`,
        })
        .from(r)
        .where(inArray(r.releaseId, releaseIds))
        .groupBy(r.releaseId)
      for (const row of rows) {
        counts.set(row.releaseId, {
          total: row.total,
          success: row.success,
          failure: row.failure,
          reporting_users: row.reportingUsers,
          failing_users: row.failingUsers,
        })
      }
      return counts
    },

    countsOf(counts: Map<string, ReportCounts>, id: string): ReportCounts {
      return counts.get(id) ?? NO_REPORTS
    },
  }
}

export type FirmwareRepository = ReturnType<typeof createFirmwareRepository>

/** The user's install reports, for the account export (snake_case, oldest first, in pages). */
export async function* exportRows(db: Db, userId: string): AsyncGenerator<Record<string, unknown>> {
  const r = firmwareInstallReports
  let after: { at: Date; id: string } | undefined
  for (;;) {
    const rows = await db
      .select({
        id: r.id,
        releaseId: r.releaseId,
        deviceId: r.deviceId,
        outcome: r.outcome,
        reason: r.reason,
        fromVersion: r.fromVersion,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
        hardwareModel: firmwareReleases.hardwareModel,
        version: firmwareReleases.version,
      })
      .from(r)
      .innerJoin(firmwareReleases, eq(firmwareReleases.id, r.releaseId))
      .where(and(eq(r.userId, userId), keysetAfter(r.createdAt, r.id, after, 'asc')))
      .orderBy(asc(r.createdAt), asc(r.id))
      .limit(500)
    for (const row of rows) {
      yield {
        id: row.id,
        release_id: row.releaseId,
        hardware_model: row.hardwareModel,
        version: row.version,
        device_id: row.deviceId,
        outcome: row.outcome,
        reason: row.reason,
        from_version: row.fromVersion,
        created_at: row.createdAt.toISOString(),
        updated_at: row.updatedAt.toISOString(),
      }
    }
    if (rows.length < 500) return
    const last = rows[rows.length - 1]
    after = { at: last.createdAt, id: last.id }
  }
}
