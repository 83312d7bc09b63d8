import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { instantDate } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { createAccountDeletionService } from '../account/deletion.ts'
import { createSessionRepository } from '../auth/session-repository.ts'
import { createClientAppRepository } from '../clients/repository.ts'
import { revokeClientApp } from '../clients/revoke.ts'
import {
  IdParamsSchema,
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { type UserRow, createUserRepository } from '../user/repository.ts'
import { createAuditLogRepository } from './repository.ts'
import {
  AdminUserDetailSchema,
  AdminUserSchema,
  AdminUsersQuerySchema,
  AuditEntrySchema,
  AuditQuerySchema,
  ClientSchema,
  CreateClientBodySchema,
  DisableBodySchema,
  IssuedClientSchema,
  RotateClientBodySchema,
  SignOutResultSchema,
} from './schemas.ts'

const ADMIN_ERRORS = [401, 403] as const

function toAdminUser(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    first_name: u.firstName,
    last_name: u.lastName,
    role: u.role,
    email_verified: u.emailVerifiedAt !== null,
    disabled_at: u.disabledAt?.toISOString() ?? null,
    created: u.createdAt.toISOString(),
    updated: u.updatedAt.toISOString(),
  }
}

function toClient(c: { id: string; name: string; createdAt: Date; rotatedAt: Date | null; revokedAt: Date | null }) {
  return {
    id: c.id,
    name: c.name,
    created: c.createdAt.toISOString(),
    rotated: c.rotatedAt?.toISOString() ?? null,
    revoked: c.revokedAt?.toISOString() ?? null,
  }
}

/** The cursor of a row listed newest first on (created_at, id). */
const createdCursor = (r: { createdAt: Date; id: string }) => encodeTimeCursor(r.createdAt, r.id)

function notSelf(request: FastifyRequest, id: string) {
  if (id === request.user.sub) {
    throw errors.conflict(
      'cannot_target_self',
      'Administrators cannot disable, sign out or delete their own account here; use the account routes.',
    )
  }
}

const adminRoutes: FastifyPluginAsyncTypebox = async function adminRoutes(app) {
  const { db, audit } = app
  const users = createUserRepository(db)
  const sessions = createSessionRepository(db)
  const clients = createClientAppRepository(db)
  const auditLog = createAuditLogRepository(db)
  const deletion = createAccountDeletionService(app)

  // Every route of this plugin: a live admin session, else 401 (no token) or 403 forbidden.
  app.addHook('onRequest', app.requireAdmin)

  const schemaBase = { tags: ['admin'], security: SECURITY.bearer }
  const userNotFound = () => errors.notFound('No such user.')

  app.get(
    '/admin/users',
    {
      schema: {
        ...schemaBase,
        summary: 'Find accounts',
        description: 'Newest first; `email` matches any part of the address, ignoring case.',
        querystring: AdminUsersQuerySchema,
        response: { 200: PageSchema(AdminUserSchema), ...errorResponses(400, ...ADMIN_ERRORS) },
      },
    },
    async function listUsers(request) {
      const { cursor, email, disabled } = request.query
      const after = decodeTimeCursor(cursor)
      const page = await keysetPage(
        request.query,
        (take) => users.search({ emailContains: email, disabled }, take, after),
        toAdminUser,
        createdCursor,
      )
      await audit.record(request, { action: 'user.list', targetType: 'user', details: { email, disabled } })
      return page
    },
  )

  app.get(
    '/admin/users/:id',
    {
      schema: {
        ...schemaBase,
        summary: 'One account',
        params: IdParamsSchema,
        response: { 200: AdminUserDetailSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404) },
      },
    },
    async function getUser(request) {
      const user = await users.findById(request.params.id)
      if (!user) throw userNotFound()
      await audit.record(request, { action: 'user.get', targetType: 'user', targetId: user.id })
      return { ...toAdminUser(user), active_sessions: await sessions.countActive(user.id) }
    },
  )

  app.post(
    '/admin/users/:id/disable',
    {
      schema: {
        ...schemaBase,
        summary: 'Disable an account',
        description:
          'The account cannot log in (`403 account_disabled`) and every session ends at once. Disabling a disabled account keeps the first time. An admin cannot disable their own account (`409 cannot_target_self`).',
        params: IdParamsSchema,
        body: DisableBodySchema,
        response: { 200: AdminUserSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409, 413, 415) },
      },
    },
    async function disableUser(request) {
      notSelf(request, request.params.id)
      const result = await app.transactionEndingSessions(async (tx, end) => {
        const user = await users.setDisabled(request.params.id, true, tx)
        if (!user) return null
        const ended = await end(user.id, 'account_disabled')
        await audit.record(
          request,
          {
            action: 'user.disable',
            targetType: 'user',
            targetId: user.id,
            details: { reason: request.body.reason, sessions_revoked: ended.length },
          },
          tx,
        )
        return { user, ended }
      })
      if (!result) throw userNotFound()
      return toAdminUser(result.user)
    },
  )

  app.post(
    '/admin/users/:id/enable',
    {
      schema: {
        ...schemaBase,
        summary: 'Enable a disabled account',
        description: 'The account can log in again; its ended sessions stay ended.',
        params: IdParamsSchema,
        response: { 200: AdminUserSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404) },
      },
    },
    async function enableUser(request) {
      const user = await db.transaction(async (tx) => {
        const row = await users.setDisabled(request.params.id, false, tx)
        if (row) await audit.record(request, { action: 'user.enable', targetType: 'user', targetId: row.id }, tx)
        return row
      })
      if (!user) throw userNotFound()
      return toAdminUser(user)
    },
  )

  app.post(
    '/admin/users/:id/sign-out',
    {
      schema: {
        ...schemaBase,
        summary: 'End every session of an account',
        description: 'All its access and refresh tokens stop working at once; the account can log in again.',
        params: IdParamsSchema,
        response: { 200: SignOutResultSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409) },
      },
    },
    async function signOutUser(request) {
      notSelf(request, request.params.id)
      const ended = await app.transactionEndingSessions(async (tx, end) => {
        const user = await users.findById(request.params.id, tx)
        if (!user) return null
        const ids = await end(user.id, 'admin_sign_out')
        await audit.record(
          request,
          { action: 'user.sign_out', targetType: 'user', targetId: user.id, details: { sessions_revoked: ids.length } },
          tx,
        )
        return ids
      })
      if (!ended) throw userNotFound()
      return { status: 'success' as const, sessions_revoked: ended.length }
    },
  )

  app.delete(
    '/admin/users/:id',
    {
      schema: {
        ...schemaBase,
        summary: 'Delete an account and all its data',
        description:
          'The same deletion as `DELETE /v1/users/me`: the account and every row that belongs to it, in one transaction. The audit entry keeps the account id only. An admin cannot delete their own account here (`409 cannot_target_self`).',
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409) },
      },
    },
    async function deleteUser(request) {
      notSelf(request, request.params.id)
      const deleted = await deletion.deleteAccount(request.params.id, (tx) =>
        audit.record(request, { action: 'user.delete', targetType: 'user', targetId: request.params.id }, tx),
      )
      if (!deleted) throw userNotFound()
      return SUCCESS
    },
  )

  app.post(
    '/admin/clients',
    {
      schema: {
        ...schemaBase,
        summary: 'Create a client app',
        description: 'The secret and the x-auth-token are in this answer only; the server keeps a hash.',
        body: CreateClientBodySchema,
        response: { 201: IssuedClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 413, 415) },
      },
    },
    async function createClient(request, reply) {
      const issued = await db.transaction(async (tx) => {
        const c = await clients.create(request.body.name.trim(), tx)
        await audit.record(
          request,
          { action: 'client.create', targetType: 'client', targetId: c.client_id, details: { name: c.name } },
          tx,
        )
        return c
      })
      return reply.status(201).send(issued)
    },
  )

  app.get(
    '/admin/clients',
    {
      schema: {
        ...schemaBase,
        summary: 'List client apps, newest first',
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(ClientSchema), ...errorResponses(400, ...ADMIN_ERRORS) },
      },
    },
    async function listClients(request) {
      const after = decodeTimeCursor(request.query.cursor)
      const page = await keysetPage(request.query, (take) => clients.list(take, after), toClient, createdCursor)
      await audit.record(request, { action: 'client.list', targetType: 'client' })
      return page
    },
  )

  app.post(
    '/admin/clients/:id/rotate',
    {
      // The body is optional: an absent one is the empty object (the default overlap).
      preValidation: async function emptyBodyIsEmptyObject(request) {
        request.body ??= {}
      },
      schema: {
        ...schemaBase,
        summary: 'Give a client app a new secret',
        description:
          'The new secret is in this answer only. The old secret keeps working for `overlap_s` seconds (default CLIENT_SECRET_OVERLAP_S, 24 h), so the app releases in the stores keep working while the new one rolls out; `overlap_s: 0` stops it at once (a leaked secret). Only the secret just replaced overlaps: rotating again ends any older one at once. Sessions are not touched. A revoked client: `409 client_revoked`.',
        params: IdParamsSchema,
        body: RotateClientBodySchema,
        response: { 200: IssuedClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409, 413, 415) },
      },
    },
    async function rotateClient(request) {
      const overlapS = request.body.overlap_s ?? app.config.CLIENT_SECRET_OVERLAP_S
      const issued = await db.transaction(async (tx) => {
        const c = await clients.rotate(request.params.id, overlapS, tx)
        if (c) {
          await audit.record(
            request,
            { action: 'client.rotate', targetType: 'client', targetId: c.client_id, details: { overlap_s: overlapS } },
            tx,
          )
        }
        return c
      })
      if (issued) return issued
      const existing = await clients.get(request.params.id)
      if (!existing) throw errors.notFound('No such client app.')
      throw errors.conflict('client_revoked', 'This client app is revoked; create a new one.')
    },
  )

  app.post(
    '/admin/clients/:id/revoke',
    {
      schema: {
        ...schemaBase,
        summary: 'Revoke a client app',
        description:
          'Its x-auth-token is refused from the next request on (register, login, refresh …), and every session opened through it ends: its refresh tokens are refused at once, its access tokens by this process at once and by every other process within SESSION_CACHE_TTL_MS (default 2 s). Revoking twice keeps the first time.',
        params: IdParamsSchema,
        response: { 200: ClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404) },
      },
    },
    async function revokeClient(request) {
      const { client } = await revokeClientApp(db, request.params.id, {
        transactionEndingSessions: app.transactionEndingSessions,
        onRevoked: (tx, sessionsEnded) =>
          audit.record(
            request,
            {
              action: 'client.revoke',
              targetType: 'client',
              targetId: request.params.id,
              details: { sessions_revoked: sessionsEnded },
            },
            tx,
          ),
      })
      if (!client) throw errors.notFound('No such client app.')
      return toClient(client)
    },
  )

  app.get(
    '/admin/audit-log',
    {
      schema: {
        ...schemaBase,
        summary: 'The audit log, newest first',
        description:
          'Every admin action (reads included): actor, action, target, time and IP. Filters combine with AND; `from` is inclusive, `to` exclusive. Actions: user.list, user.get, user.disable, user.enable, user.sign_out (also through `POST /v1/auth/sign-out`), user.delete, client.create, client.list, client.rotate, client.revoke, audit.list, telemetry.trace.read, telemetry.spans.read, telemetry.slowest_spans.read, telemetry.logs.read, telemetry.metrics.read, and those of other admin domains (firmware.* …). Any admin request under `/v1/admin/` that wrote no entry of its own (a refused or failed one: 400, 404, 409 …) gets one whose action is the method and route pattern (e.g. `GET /v1/admin/users/:id`), target_type `request`, and `details.status`.',
        querystring: AuditQuerySchema,
        response: { 200: PageSchema(AuditEntrySchema), ...errorResponses(400, ...ADMIN_ERRORS) },
      },
    },
    async function listAuditLog(request) {
      const q = request.query
      const after = decodeTimeCursor(q.cursor)
      const fetch = (take: number) =>
        auditLog.page(
          {
            actorId: q.actor_id,
            action: q.action,
            targetType: q.target_type,
            targetId: q.target_id,
            from: q.from ? instantDate(q.from) : undefined,
            to: q.to ? instantDate(q.to) : undefined,
          },
          take,
          after,
        )
      const page = await keysetPage(
        q,
        fetch,
        (e) => ({
          id: e.id,
          actor_id: e.actorId,
          action: e.action,
          target_type: e.targetType,
          target_id: e.targetId,
          ip: e.ip,
          details: e.details ?? null,
          created: e.createdAt.toISOString(),
        }),
        createdCursor,
      )
      await audit.record(request, { action: 'audit.list', targetType: 'audit_log' })
      return page
    },
  )
}

export default adminRoutes
