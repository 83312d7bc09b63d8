import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
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
import { createUserRepository } from '../user/repository.ts'
import { sharingMails } from './mails.ts'
import { createSharingRepository, newInviteCode } from './repository.ts'
import { InviteBodySchema, ScopesBodySchema, ShareSchema, toShare } from './schemas.ts'

/** Owner side: invite someone to see my data, list, change scopes, revoke. */
const sharingRoutes: FastifyPluginAsyncTypebox = async function sharingRoutes(app) {
  const repo = createSharingRepository(app.db)
  const users = createUserRepository(app.db)
  const { config, db, mailer } = app
  app.addHook('onRequest', app.authenticate)

  app.post(
    '/sharing/invites',
    {
      preHandler: app.requireRecentAuth,
      schema: {
        tags: ['sharing'],
        summary: 'Invite another account to see some of my data',
        description:
          'The invitee must have an account (`400 email_not_found`, as the Beddit reference) and must not already have a live share or invite from me (`400 already_shared`); sharing with oneself is `400 cannot_share_with_self`. The invite is e-mailed with an accept link and expires after SHARE_INVITE_TTL_DAYS (14). Needs a recent authentication (step-up): `401 reauthentication_required` unless the access token comes from a login or `POST /v1/auth/reauthenticate` within REAUTH_WINDOW_S (600 s), made with the second factor when the account has one.',
        security: SECURITY.bearer,
        body: InviteBodySchema,
        response: { 201: ShareSchema, ...errorResponses(400, 401, 413, 415) },
      },
    },
    async function invite(request, reply) {
      const ownerId = request.user.sub
      const invitee = await users.findByEmail(request.body.email)
      if (!invitee) throw errors.badRequest('email_not_found', 'No account has this e-mail address.')
      if (invitee.id === ownerId) throw errors.badRequest('cannot_share_with_self', 'You cannot share with yourself.')
      const owner = await users.findById(ownerId)
      const { code, hash } = newInviteCode()
      const id = await db.transaction(async (tx) => {
        const created = await repo.invite(
          {
            ownerId,
            viewerId: invitee.id,
            scopes: request.body.scopes,
            codeHash: hash,
            expiresAt: new Date(Date.now() + config.SHARE_INVITE_TTL_DAYS * 86400_000),
          },
          tx,
        )
        if (created) {
          await app.changes.record(tx, ownerId, { type: 'share', action: 'created', id: created })
          const name = `${owner?.firstName ?? ''} ${owner?.lastName ?? ''}`.trim()
          await mailer.enqueue(tx, sharingMails.shareInvite(config, invitee.email, name, request.body.scopes, code))
        }
        return created
      })
      if (!id)
        throw errors.badRequest('already_shared', 'This person already has a share or a pending invite from you.')
      const row = await repo.get(ownerId, id)
      if (!row) throw errors.notFound()
      return reply.status(201).send(toShare(row))
    },
  )

  app.get(
    '/sharing',
    {
      schema: {
        tags: ['sharing'],
        summary: 'My shares and pending invites, newest first',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(ShareSchema), ...errorResponses(400, 401) },
      },
    },
    async function listShares(request) {
      return keysetPage(
        request.query,
        (take) => repo.listOwned(request.user.sub, take, decodeTimeCursor(request.query.cursor)),
        toShare,
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
    },
  )

  app.get(
    '/sharing/:id',
    {
      schema: {
        tags: ['sharing'],
        summary: 'One of my shares',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: ShareSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function getShare(request) {
      const row = await repo.getOwned(request.user.sub, request.params.id)
      if (!row) throw errors.notFound('No such share.')
      return toShare(row)
    },
  )

  app.patch(
    '/sharing/:id',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Change the scopes of a share (or of a pending invite)',
        description: 'Takes effect at once for the viewer.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        body: ScopesBodySchema,
        response: { 200: ShareSchema, ...errorResponses(400, 401, 404, 413, 415) },
      },
    },
    async function changeScopes(request) {
      const updated = await db.transaction(async (tx) => {
        const ok = await repo.updateScopes(request.user.sub, request.params.id, request.body.scopes, tx)
        if (ok)
          await app.changes.record(tx, request.user.sub, { type: 'share', action: 'updated', id: request.params.id })
        return ok
      })
      if (!updated) {
        throw errors.notFound('No such share.')
      }
      const row = await repo.getOwned(request.user.sub, request.params.id)
      if (!row) throw errors.notFound('No such share.')
      return toShare(row)
    },
  )

  app.delete(
    '/sharing/:id',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Revoke a share, or cancel a pending invite',
        description: 'The viewer loses access at once.',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function revokeShare(request) {
      const revoked = await db.transaction(async (tx) => {
        const ok = await repo.deleteOwned(request.user.sub, request.params.id, tx)
        if (ok)
          await app.changes.record(tx, request.user.sub, { type: 'share', action: 'deleted', id: request.params.id })
        return ok
      })
      if (!revoked) throw errors.notFound('No such share.')
      return SUCCESS
    },
  )
}

export default sharingRoutes
