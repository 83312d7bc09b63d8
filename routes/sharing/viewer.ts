import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
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
import { type ShareRow, createSharingRepository, hashInviteCode } from './repository.ts'
import { SharedSchema, toShared } from './schemas.ts'

const sharedCursor = (r: ShareRow) => encodeTimeCursor(r.createdAt, r.id)

/** Viewer side: invites to me, what others share with me. */
const sharedRoutes: FastifyPluginAsyncTypebox = async function sharedRoutes(app) {
  const repo = createSharingRepository(app.db)
  const { config } = app

  app.get(
    '/shared/invites/accept',
    {
      config: { rateLimit: { max: 30, timeWindow: 900_000 } },
      schema: {
        tags: ['shared'],
        summary: 'The link from the invite e-mail: accepts and redirects to the app',
        description:
          'Opened from the e-mail, so it takes no header: the code is the credential. A GET, as the Beddit reference explains (e-mail clients cannot POST). Answers 302 to `APP_URL/shared/{id}`; an invalid, used or expired code answers 404.',
        querystring: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 128 }) },
          { additionalProperties: false },
        ),
        response: {
          302: Type.Null({ description: 'Redirect to the app (Location header)' }),
          ...errorResponses(400, 404, 429),
        },
      },
    },
    async function acceptByLink(request, reply) {
      const id = await repo.accept({ codeHash: hashInviteCode(request.query.code) })
      if (!id) throw errors.notFound('This invitation is not valid or has expired.')
      return reply.redirect(`${config.APP_URL.replace(/\/$/, '')}/shared/${id}`, 302)
    },
  )

  app.get(
    '/shared/invites',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: 'Pending invitations to see other people’s data',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(SharedSchema), ...errorResponses(400, 401) },
      },
    },
    async function listInvites(request) {
      const after = decodeTimeCursor(request.query.cursor)
      return keysetPage(
        request.query,
        (take) => repo.listInvitesFor(request.user.sub, take, after),
        toShared,
        sharedCursor,
      )
    },
  )

  app.post(
    '/shared/invites/:id/accept',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: 'Accept an invitation',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: SharedSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function acceptInvite(request) {
      const id = await repo.accept({ viewerId: request.user.sub, id: request.params.id })
      const row = id ? await repo.get(id) : null
      if (!row) throw errors.notFound('No such invitation, or it has expired.')
      return toShared(row)
    },
  )

  app.post(
    '/shared/invites/:id/decline',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: 'Decline an invitation',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function declineInvite(request) {
      if (!(await repo.decline(request.user.sub, request.params.id))) throw errors.notFound('No such invitation.')
      return SUCCESS
    },
  )

  app.get(
    '/shared',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: 'Who shares their data with me, and which scopes',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(SharedSchema), ...errorResponses(400, 401) },
      },
    },
    async function listShared(request) {
      const after = decodeTimeCursor(request.query.cursor)
      return keysetPage(request.query, (take) => repo.listShared(request.user.sub, take, after), toShared, sharedCursor)
    },
  )

  app.delete(
    '/shared/:id',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: 'Stop viewing someone’s data',
        security: SECURITY.bearer,
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function stopViewing(request) {
      if (!(await repo.stopViewing(request.user.sub, request.params.id))) throw errors.notFound('No such share.')
      return SUCCESS
    },
  )
}

export default sharedRoutes
