import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { DateTimeSchema, UuidSchema, errorResponses } from '../common.ts'
import { PageResponseSchema, acceptHtmlForms, deadLink, escapeHtml, sendPage } from '../confirm-page.ts'
import { createUserRepository } from '../user/repository.ts'
import { createGroupRepository } from './group-repository.ts'
import { sharingMails } from './mails.ts'
import { hashInviteCode, newInviteCode } from './repository.ts'
import { PersonSchema } from './schemas.ts'

const GroupListSchema = Type.Array(
  Type.Object(
    {
      id: UuidSchema,
      created: DateTimeSchema,
      members: Type.Array(PersonSchema),
      pending_invites: Type.Array(
        Type.Object(
          { created: DateTimeSchema, created_by: Type.Union([UuidSchema, Type.Null()]), email: Type.String() },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  ),
  { description: 'The groups the user belongs to (Beddit group listing)' },
)

const UserParams = Type.Object({ user_id: UuidSchema }, { additionalProperties: false })
const GroupParams = Type.Object({ user_id: UuidSchema, group_id: UuidSchema }, { additionalProperties: false })
const MemberParams = Type.Object(
  { user_id: UuidSchema, group_id: UuidSchema, member_id: UuidSchema },
  { additionalProperties: false },
)
const EmailBody = Type.Object(
  { email: Type.String({ format: 'email', maxLength: 254 }) },
  { additionalProperties: false },
)

/** Only the user themselves may use their `{user_id}` paths. */
function ownPath(request: { params: { user_id: string }; user: { sub: string } }) {
  if (request.params.user_id !== request.user.sub) throw errors.forbidden('You can only manage your own groups.')
}

/** Peer groups as in the Beddit reference: members see each other's data. */
const groupRoutes: FastifyPluginAsyncTypebox = async function groupRoutes(app) {
  const groups = createGroupRepository(app.db)
  const users = createUserRepository(app.db)
  const { config, db, mailer } = app

  /** Invites by e-mail to a group; the group is created first when none is given. */
  async function invite(request: FastifyRequest, email: string, groupId: string | null) {
    const inviterId = request.user.sub
    const invitee = await users.findByEmail(email)
    if (!invitee) throw errors.badRequest('email_not_found', 'No account has this e-mail address.')
    const inviter = await users.findById(inviterId)
    const { code, hash } = newInviteCode()
    await db.transaction(async (tx) => {
      // The invitee's row, locked as the foreign key's check did before it was dropped (docs/scaling.md): an
      // account being deleted meanwhile is waited for, then found gone, and gets no invite.
      if (!(await users.lock(invitee.id, tx))) {
        throw errors.badRequest('email_not_found', 'No account has this e-mail address.')
      }
      const id = groupId ?? (await groups.create(inviterId, tx))
      if (await groups.isMember(id, invitee.id, tx)) {
        throw errors.badRequest('already_member', 'This person is already a member of the group.')
      }
      const invited = await groups.invite(
        {
          groupId: id,
          inviteeId: invitee.id,
          createdBy: inviterId,
          codeHash: hash,
          expiresAt: new Date(Date.now() + config.SHARE_INVITE_TTL_DAYS * 86400_000),
        },
        tx,
      )
      if (!invited)
        throw errors.badRequest('already_invited', 'This person already has a pending invitation to the group.')
      const name = `${inviter?.firstName ?? ''} ${inviter?.lastName ?? ''}`.trim()
      await mailer.enqueue(tx, sharingMails.groupInvite(config, invitee.email, name, id, code))
    })
    return groups.listFor(inviterId)
  }

  const bearer = { onRequest: app.authenticate }
  const errs = errorResponses(400, 401, 403, 404)

  app.get(
    '/user/:user_id/group',
    {
      ...bearer,
      schema: {
        tags: ['group'],
        summary: 'My groups, with members and pending invitations',
        security: SECURITY.bearer,
        params: UserParams,
        response: { 200: GroupListSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async function listGroups(request) {
      ownPath(request)
      return groups.listFor(request.user.sub)
    },
  )

  app.post(
    '/user/:user_id/group/invite',
    {
      ...bearer,
      schema: {
        tags: ['group'],
        summary: 'Invite someone to a new group',
        description:
          'Creates a group with me as its member and e-mails the invitation. The address must belong to an account (`400 email_not_found`). Answers the updated group listing.',
        security: SECURITY.bearer,
        params: UserParams,
        body: EmailBody,
        response: { 200: GroupListSchema, ...errorResponses(400, 401, 403, 413, 415) },
      },
    },
    async function inviteToNewGroup(request) {
      ownPath(request)
      if (request.body.email.toLowerCase() === (await users.findById(request.user.sub))?.email) {
        throw errors.badRequest('already_member', 'You are already a member of your own group.')
      }
      return invite(request, request.body.email, null)
    },
  )

  app.post(
    '/user/:user_id/group/:group_id/invite',
    {
      ...bearer,
      schema: {
        tags: ['group'],
        summary: 'Invite someone to one of my groups',
        description:
          '`400 email_not_found` (no such account), `400 already_member`, `400 already_invited`. Any member may invite. Answers the updated group listing.',
        security: SECURITY.bearer,
        params: GroupParams,
        body: EmailBody,
        response: { 200: GroupListSchema, ...errorResponses(400, 401, 403, 404, 413, 415) },
      },
    },
    async function inviteToGroup(request) {
      ownPath(request)
      if (!(await groups.isMember(request.params.group_id, request.user.sub))) throw errors.notFound('No such group.')
      return invite(request, request.body.email, request.params.group_id)
    },
  )

  app.post(
    '/user/:user_id/group/:group_id/accept',
    {
      ...bearer,
      schema: {
        tags: ['group'],
        summary: 'Accept my invitation to a group (API)',
        security: SECURITY.bearer,
        params: GroupParams,
        response: { 200: GroupListSchema, ...errs },
      },
    },
    async function acceptGroupInvite(request) {
      ownPath(request)
      if (!(await groups.accept(request.params.group_id, { inviteeId: request.user.sub }))) {
        throw errors.notFound('No such invitation, or it has expired.')
      }
      return groups.listFor(request.user.sub)
    },
  )

  // The e-mailed link: GET (and so HEAD) shows what joining means; only the page's POST joins.
  acceptHtmlForms(app)
  const LinkParams = Type.Object(
    { group_id: UuidSchema, invite_code: Type.String({ minLength: 1, maxLength: 128 }) },
    { additionalProperties: false },
  )
  const LINK_NOTES =
    'The code is the credential (256 random bits, single use, expires after SHARE_INVITE_TTL_DAYS) and the link takes no header, so it works from any mail client (Beddit reference). An invalid, used or expired code answers `404 not_found` (JSON; an HTML page when the request accepts `text/html`).'

  app.get(
    '/group/:group_id/invite/:invite_code/accept',
    {
      config: { rateLimit: { max: 30, timeWindow: 900_000 } },
      schema: {
        tags: ['group'],
        summary: 'The link from the invitation e-mail: a page asking to confirm',
        description: `Answers a small HTML page naming who invites and to which group (its size; members see each other's data), with a button that POSTs to this same path. Opening the link (GET), or a mail scanner's or link preview's HEAD or GET, joins nothing. ${LINK_NOTES}`,
        params: LinkParams,
        response: { 200: PageResponseSchema, ...errorResponses(400, 404, 429) },
      },
    },
    async function groupInvitePage(request, reply) {
      const { group_id: groupId, invite_code: code } = request.params
      const invite = await groups.findInviteByCode(groupId, hashInviteCode(code))
      if (!invite) return deadLink(request, reply, config, 'invitation')
      const inviter = invite.inviter
        ? `<strong>${escapeHtml(`${invite.inviter.firstName} ${invite.inviter.lastName}`.trim())}</strong> (${escapeHtml(invite.inviter.email)})`
        : 'A member'
      const size = invite.memberCount === 1 ? '1 member' : `${invite.memberCount} members`
      return sendPage(reply, config, 200, {
        title: 'Join a NOWATCH group',
        paragraphs: [
          `${inviter} invites <strong>${escapeHtml(invite.inviteeEmail)}</strong> to a NOWATCH group of ${size}.`,
          "The members of a group see each other's data, yours included once you join. You can leave at any time.",
        ],
        form: {
          action: `/v1/group/${encodeURIComponent(groupId)}/invite/${encodeURIComponent(code)}/accept`,
          button: 'Join the group',
        },
      })
    },
  )

  app.post(
    '/group/:group_id/invite/:invite_code/accept',
    {
      config: { rateLimit: { max: 30, timeWindow: 900_000 } },
      schema: {
        tags: ['group'],
        summary: 'Confirm an e-mailed group invitation (the button of the invite page)',
        description: `Joins the group and answers \`303\` to \`APP_URL/groups/{group_id}\`. Takes no body (the code is in the path; an empty HTML form post is fine). No CSRF token: nothing ambient (no cookie) authorises it, the invitation code in the path is itself the capability. ${LINK_NOTES}`,
        params: LinkParams,
        response: {
          303: Type.Null({ description: 'Joined: redirect to the app (Location header)' }),
          ...errorResponses(400, 404, 413, 415, 429),
        },
      },
    },
    async function acceptGroupLink(request, reply) {
      const { group_id: groupId, invite_code: code } = request.params
      if (!(await groups.accept(groupId, { codeHash: hashInviteCode(code) }))) {
        return deadLink(request, reply, config, 'invitation')
      }
      return reply.redirect(`${config.APP_URL.replace(/\/$/, '')}/groups/${groupId}`, 303)
    },
  )

  app.delete(
    '/user/:user_id/group/:group_id/member/:member_id',
    {
      ...bearer,
      schema: {
        tags: ['group'],
        summary: 'Remove a member from a group (any member may, oneself included)',
        description: 'When one member is left, the group is deleted. Answers the updated group listing.',
        security: SECURITY.bearer,
        params: MemberParams,
        response: { 200: GroupListSchema, ...errs },
      },
    },
    async function removeMember(request) {
      ownPath(request)
      const { group_id: groupId, member_id: memberId } = request.params
      if (!(await groups.isMember(groupId, request.user.sub))) throw errors.notFound('No such group.')
      const removed = await db.transaction((tx) => groups.removeMember(groupId, memberId, tx))
      if (!removed) throw errors.notFound('No such member in this group.')
      return groups.listFor(request.user.sub)
    },
  )
}

export default groupRoutes
