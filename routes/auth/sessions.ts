import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { SessionParamsSchema, SessionSchema } from './schemas.ts'
import { parseUserAgent } from './user-agent.ts'

/** The caller's own sessions under /users/me/sessions: the auth domain's data, the user's path. */
const sessionRoutes: FastifyPluginAsyncTypebox = async function sessionRoutes(app) {
  const sessions = app.sessionRepository

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

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
      const after = decodeTimeCursor(request.query.cursor)
      return keysetPage(
        request.query,
        (take) => sessions.pageActive(request.user.sub, take, after),
        (s) => ({
          id: s.id,
          current: s.id === request.user.sid,
          client: s.clientId ? { id: s.clientId, name: s.clientName ?? '' } : null,
          created: s.createdAt.toISOString(),
          last_used: s.lastUsedAt.toISOString(),
          expires: s.expiresAt.toISOString(),
          ip: s.ip,
          user_agent: s.userAgent,
          ...parseUserAgent(s.userAgent),
          method: s.authMethod,
        }),
        (s) => encodeTimeCursor(s.createdAt, s.id),
      )
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
}

export default sessionRoutes
