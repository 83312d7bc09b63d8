import { and, desc, eq, gte, lt } from 'drizzle-orm'
import type { Db } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { auditLog } from '../../db/schema/index.ts'

export interface AuditFilter {
  actorId?: string
  action?: string
  targetType?: string
  targetId?: string
  from?: Date
  to?: Date
}

/** Reads of the audit log; writes go through `app.audit.record` in the transaction of the action. */
export function createAuditLogRepository(db: Db) {
  return {
    /** Newest first, keyset on (created_at, id). */
    async page(filter: AuditFilter, limit: number, after?: { at: Date; id: string }) {
      return db
        .select()
        .from(auditLog)
        .where(
          and(
            filter.actorId ? eq(auditLog.actorId, filter.actorId) : undefined,
            filter.action ? eq(auditLog.action, filter.action) : undefined,
            filter.targetType ? eq(auditLog.targetType, filter.targetType) : undefined,
            filter.targetId ? eq(auditLog.targetId, filter.targetId) : undefined,
            filter.from ? gte(auditLog.createdAt, filter.from) : undefined,
            filter.to ? lt(auditLog.createdAt, filter.to) : undefined,
            keysetAfter(auditLog.createdAt, auditLog.id, after),
          ),
        )
        .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
        .limit(limit)
    },
  }
}
