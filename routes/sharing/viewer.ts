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
import { PageResponseSchema, acceptHtmlForms, deadLink, escapeHtml, sendPage } from '../confirm-page.ts'
import { type ShareRow, createSharingRepository, hashInviteCode } from './repository.ts'
import { SharedSchema, toShared } from './schemas.ts'

const sharedCursor = (r: ShareRow) => encodeTimeCursor(r.createdAt, r.id)

/** Viewer side: invites to me, what others share with me. */
const sharedRoutes: FastifyPluginAsyncTypebox = async function sharedRoutes(app) {
  const repo = createSharingRepository(app.db)
  // A share belongs to its owner's data: accepting it is a change in the owner's feed.
  const acceptAndRecord = (where: Parameters<typeof repo.accept>[0]) =>
    app.db.transaction(async (tx) => {
      const accepted = await repo.accept(where, tx)
      if (accepted)
        await app.changes.record(tx, accepted.ownerId, { type: 'share', action: 'updated', id: accepted.id })
      return accepted
    })
  const { config } = app

  // The e-mailed link: GET (and so HEAD) shows what accepting means; only the page's POST accepts.
  acceptHtmlForms(app)
  const InviteCodeSchema = Type.String({ minLength: 1, maxLength: 128, description: 'The code from the e-mail' })
  const LINK_NOTES =
    'The code is the credential (256 random bits, single use, expires after SHARE_INVITE_TTL_DAYS) and takes no other header: the link works from any mail client, as the Beddit reference asks. A wrong, used or expired code answers `404 not_found` (JSON; an HTML page when the request accepts `text/html`).'

  app.get(
    '/shared/invites/accept',
    {
      config: { rateLimit: { max: 30, timeWindow: 900_000 } },
      schema: {
        tags: ['shared'],
        summary: 'The link from the invite e-mail: a page asking to confirm',
        description: `Answers a small HTML page naming who shares and which data, with a button that POSTs the confirmation to \`POST /v1/shared/invites/accept\`. Opening the link (GET), or a mail scanner's or link preview's HEAD or GET, accepts nothing. ${LINK_NOTES}`,
        querystring: Type.Object({ code: InviteCodeSchema }, { additionalProperties: false }),
        response: { 200: PageResponseSchema, ...errorResponses(400, 404, 429) },
      },
    },
    async function invitePage(request, reply) {
      const invite = await repo.findInviteByCode(hashInviteCode(request.query.code))
      if (!invite) return deadLink(request, reply, config, 'invitation')
      const owner = `${invite.ownerFirstName} ${invite.ownerLastName}`.trim()
      return sendPage(reply, config, 200, {
        title: `${owner} wants to share their NOWATCH data with you`,
        paragraphs: [
          `<strong>${escapeHtml(owner)}</strong> (${escapeHtml(invite.ownerEmail)}) invites <strong>${escapeHtml(invite.viewerEmail)}</strong> to see their data: ${invite.scopes.map((s) => escapeHtml(s)).join(', ')}.`,
          'You can stop viewing at any time; they can change or withdraw what they share.',
        ],
        form: { action: '/v1/shared/invites/accept', fields: { code: request.query.code }, button: 'Accept' },
      })
    },
  )

  app.post(
    '/shared/invites/accept',
    {
      config: { rateLimit: { max: 30, timeWindow: 900_000 } },
      schema: {
        tags: ['shared'],
        summary: 'Confirm an e-mailed invitation (the button of the invite page)',
        description: `Accepts the invitation whose code is posted (an HTML form, \`application/x-www-form-urlencoded\`, or JSON) and answers \`303\` to \`APP_URL/shared/{id}\`. No CSRF token: the form carries no cookie or other ambient credential, and the invitation code in it is itself the capability — a page elsewhere cannot post one it does not know. ${LINK_NOTES}`,
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: Type.Object({ code: InviteCodeSchema }, { additionalProperties: false }),
        response: {
          303: Type.Null({ description: 'Accepted: redirect to the app (Location header)' }),
          ...errorResponses(400, 404, 413, 415, 429),
        },
      },
    },
    async function acceptByLink(request, reply) {
      const accepted = await acceptAndRecord({ codeHash: hashInviteCode(request.body.code) })
      if (!accepted) return deadLink(request, reply, config, 'invitation')
      return reply.redirect(`${config.APP_URL.replace(/\/$/, '')}/shared/${accepted.id}`, 303)
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
      const accepted = await acceptAndRecord({ viewerId: request.user.sub, id: request.params.id })
      const row = accepted ? await repo.get(accepted.ownerId, accepted.id) : null
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
      const declined = await app.db.transaction(async (tx) => {
        const ownerId = await repo.decline(request.user.sub, request.params.id, tx)
        if (ownerId) await app.changes.record(tx, ownerId, { type: 'share', action: 'deleted', id: request.params.id })
        return ownerId
      })
      if (!declined) throw errors.notFound('No such invitation.')
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
      const stopped = await app.db.transaction(async (tx) => {
        const ownerId = await repo.stopViewing(request.user.sub, request.params.id, tx)
        if (ownerId) await app.changes.record(tx, ownerId, { type: 'share', action: 'deleted', id: request.params.id })
        return ownerId
      })
      if (!stopped) throw errors.notFound('No such share.')
      return SUCCESS
    },
  )
}

export default sharedRoutes
