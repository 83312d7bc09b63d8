import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DbOrTx } from '../db/client.ts'
import { auditLog } from '../db/schema/index.ts'

export interface AuditEntry {
  /** e.g. `user.disable`, `client.rotate`, `firmware.publish` */
  action: string
  targetType: string
  targetId?: string | null
  details?: Record<string, unknown>
}

export interface Audit {
  /** Writes who did what to what, when and from where; pass the transaction of the change itself. */
  record(request: FastifyRequest, entry: AuditEntry, tx?: DbOrTx): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

export default fp(
  async function auditPlugin(app: FastifyInstance) {
    app.decorate('audit', {
      async record(request, entry, tx) {
        await (tx ?? app.db).insert(auditLog).values({
          actorId: request.user?.sub ?? null,
          action: entry.action,
          targetType: entry.targetType,
          targetId: entry.targetId ?? null,
          ip: request.ip,
          details: entry.details ?? null,
        })
      },
    } satisfies Audit)
  },
  { name: 'audit', dependencies: ['db', 'auth'] },
)
