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
  interface FastifyRequest {
    /** Set by audit.record(): this request wrote its own audit entry. */
    audited: boolean
  }
}

/** The admin surface: every operation under it is an admin action, audited whatever its outcome. */
const isAdminRoute = (url: string | undefined) => !!url && /^\/v\d+\/admin\//.test(url)

export default fp(
  async function auditPlugin(app: FastifyInstance) {
    app.decorateRequest('audited', false)
    app.decorate('audit', {
      async record(request, entry, tx) {
        request.audited = true
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

    /**
     * The safety net behind the explicit entries: an admin request under /v*\/admin/ that wrote none (a
     * refusal, a 404, a route that forgot), or that failed after writing one in a transaction that rolled
     * back, gets a generic entry — the route pattern, its path ids and the status — before the answer
     * leaves (onSend), so no admin action, read or write, goes unrecorded.
     */
    app.addHook('onSend', async function auditAdminRequest(request, reply, payload) {
      if (request.user?.role !== 'admin' || !isAdminRoute(request.routeOptions.url)) return payload
      if (request.audited && reply.statusCode < 400) return payload
      const params = (request.params ?? {}) as Record<string, unknown>
      const id = Object.values(params).find((v) => typeof v === 'string') as string | undefined
      try {
        await app.audit.record(request, {
          action: `${request.method} ${request.routeOptions.url}`,
          targetType: 'request',
          targetId: id ?? null,
          details: { status: reply.statusCode, params },
        })
      } catch (err) {
        // A read that cannot be audited is not delivered; a failure is answered as it is, and logged.
        if (reply.statusCode < 400) throw err
        request.log.error({ err }, 'audit entry for a failed admin request could not be written')
      }
      return payload
    })
  },
  { name: 'audit', dependencies: ['db', 'auth'] },
)
