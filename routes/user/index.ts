import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { verifyPassword } from '../auth/passwords.ts'
import { createSessionRepository } from '../auth/session-repository.ts'
import { parseUserAgent } from '../auth/user-agent.ts'
import {
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
} from '../common.ts'
import { createAccountDeletionService } from './account-deletion.ts'
import { exportSections } from './export-sections.ts'
import { exportStream } from './export.ts'
import { profileChanges, toProfile } from './profile.ts'
import { createUserRepository } from './repository.ts'
import {
  DeleteAccountBodySchema,
  ExportDocumentSchema,
  ProfilePatchSchema,
  ProfileSchema,
  SessionParamsSchema,
  SessionSchema,
  SettingsPutSchema,
  SettingsSchema,
} from './schemas.ts'
import { type SettingKey, type SettingValue, effectiveSettings } from './settings.ts'

const BODY_ERRORS = [400, 413, 415] as const
const gone = () => errors.unauthorized('session_revoked', 'This session has ended; log in again.')

const userRoutes: FastifyPluginAsyncTypebox = async function userRoutes(app) {
  const { db, limits } = app
  const users = createUserRepository(db)
  const sessions = createSessionRepository(db)
  const deletion = createAccountDeletionService(app)

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/users/me',
    {
      schema: {
        tags: ['user'],
        summary: 'My profile',
        security: SECURITY.bearer,
        response: { 200: ProfileSchema, ...errorResponses(401) },
      },
    },
    async function getProfile(request) {
      // Cached for at most SESSION_CACHE_TTL_MS, like the session check before it (see plugins/auth.ts).
      const profile = await app.profileCache.get(request.user.sub)
      if (!profile) throw gone()
      return profile
    },
  )

  app.patch(
    '/users/me',
    {
      schema: {
        tags: ['user'],
        summary: 'Change some or all of my profile',
        description:
          'Send any subset of the fields; answers the whole updated profile. `null` clears date_of_birth, sex, weight and height; `null` on first_name, last_name, sleep_time_goal, tip_audiences or time_zone is `400 validation_failed`. id, email, email_verified, created and updated are read-only and ignored. Ranges: weight 2..500 kg, height 30..275 cm, sleep_time_goal 3600..57600 s, date_of_birth from 1900-01-01 to today. time_zone must be an IANA name known to the server.',
        security: SECURITY.bearer,
        body: ProfilePatchSchema,
        response: { 200: ProfileSchema, ...errorResponses(...BODY_ERRORS, 401) },
      },
    },
    async function patchProfile(request) {
      const { changes, problems } = profileChanges(request.body)
      if (changes.timeZone && !(await users.isKnownTimeZone(changes.timeZone))) {
        problems.push({ field: 'time_zone', problem: 'is not an IANA time zone name' })
      }
      if (problems.length) throw errors.validation(problems)
      const user = await users.updateProfile(request.user.sub, changes)
      app.profileCache.invalidate(request.user.sub)
      if (!user) throw gone()
      return toProfile(user)
    },
  )

  app.get(
    '/users/me/settings',
    {
      schema: {
        tags: ['user'],
        summary: 'My account settings',
        description: 'Every key with its value: the one I set, or the default.',
        security: SECURITY.bearer,
        response: { 200: SettingsSchema, ...errorResponses(401) },
      },
    },
    async function getSettings(request) {
      return effectiveSettings(await users.settings(request.user.sub))
    },
  )

  app.put(
    '/users/me/settings',
    {
      schema: {
        tags: ['user'],
        summary: 'Set some of my account settings',
        description:
          'Keys not sent keep their value; `null` resets a key to its default. Answers every key with its value, as GET.',
        security: SECURITY.bearer,
        body: SettingsPutSchema,
        response: { 200: SettingsSchema, ...errorResponses(...BODY_ERRORS, 401) },
      },
    },
    async function putSettings(request) {
      const values = request.body as Partial<Record<SettingKey, SettingValue | null>>
      const stored = await db.transaction(async (tx) => {
        await users.putSettings(request.user.sub, values, tx)
        return users.settings(request.user.sub, tx)
      })
      return effectiveSettings(stored)
    },
  )

  app.get(
    '/users/me/sessions',
    {
      schema: {
        tags: ['user'],
        summary: 'My active sessions, newest login first',
        description:
          'One per login that has not ended: the client app, times, IP and the user agent parsed into browser, OS and device. `current` marks the session of this access token.',
        security: SECURITY.bearer,
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(SessionSchema), ...errorResponses(400, 401) },
      },
    },
    async function listSessions(request) {
      const limit = request.query.limit ?? 50
      const rows = await sessions.pageActive(request.user.sub, limit + 1, decodeTimeCursor(request.query.cursor))
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return {
        data: page.map((s) => ({
          id: s.id,
          current: s.id === request.user.sid,
          client: s.clientId ? { id: s.clientId, name: s.clientName ?? '' } : null,
          created: s.createdAt.toISOString(),
          last_used: s.lastUsedAt.toISOString(),
          expires: s.expiresAt.toISOString(),
          ip: s.ip,
          user_agent: s.userAgent,
          ...parseUserAgent(s.userAgent),
        })),
        next_cursor: rows.length > limit && last ? encodeTimeCursor(last.createdAt, last.id) : null,
      }
    },
  )

  app.delete(
    '/users/me/sessions/:id',
    {
      schema: {
        tags: ['user'],
        summary: 'End one of my sessions',
        description:
          "Its access and refresh tokens stop working at once. Ending the current session is a logout. Another account's session, an ended one or an unknown id: `404 not_found`.",
        security: SECURITY.bearer,
        params: SessionParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function revokeSession(request) {
      const ended = await app.endSessions(request.user.sub, 'revoked_by_user', { only: request.params.id })
      if (ended.length === 0) throw errors.notFound('No such active session.')
      return SUCCESS
    },
  )

  app.delete(
    '/users/me',
    {
      config: { rateLimit: { max: 10, timeWindow: 900_000 } },
      schema: {
        tags: ['user'],
        summary: 'Delete my account and all my data',
        description:
          'Needs the current password (a wrong one: `400 validation_failed` on `password`; after 4 wrong ones within 15 minutes, `429 rate_limited`). In one transaction the account and every row that belongs to it go: profile, settings, sessions, login history, measurements, journal, shares both ways, group memberships, files it owns, and mail queued to its address. Every token stops working and the next login fails. This cannot be undone; export the data first.',
        security: SECURITY.bearer,
        body: DeleteAccountBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function deleteAccount(request) {
      const user = await users.findById(request.user.sub)
      if (!user) throw gone()
      if (!(await verifyPassword(request.body.password, user.passwordHash))) {
        await limits.hit(`delete-account:user:${user.id}`, 4, 900)
        throw errors.validation([{ field: 'password', problem: 'is not your current password' }])
      }
      if (!(await deletion.deleteAccount(user.id))) throw gone()
      request.log.info({ userId: user.id }, 'account deleted by its owner')
      return SUCCESS
    },
  )

  app.get(
    '/users/me/export',
    {
      config: { rateLimit: { max: 10, timeWindow: 3600_000 } },
      schema: {
        tags: ['user'],
        summary: 'Download all my data as one JSON document',
        description:
          'Streamed (chunked transfer encoding): the server writes rows as it reads them, so the size of the account does not matter. `sections` holds one array per data domain; a download that does not end with `}}` was cut short and should be retried. Rows are read in batches, not in one snapshot: data written during the download may or may not appear. At most 10 exports an hour from one IP.',
        security: SECURITY.bearer,
        response: { 200: ExportDocumentSchema, ...errorResponses(401, 429) },
      },
    },
    async function exportAccount(request, reply) {
      const stream = exportStream(db, request.user.sub, exportSections)
      stream.on('error', (err) => request.log.error({ err }, 'account export failed mid-stream'))
      const day = new Date().toISOString().slice(0, 10)
      return reply
        .type('application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="nowatch-export-${day}.json"`)
        .header('cache-control', 'no-store')
        .send(stream as never) // a stream is sent as is; the 200 schema documents the document it carries
    },
  )
}

export default userRoutes
