import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Db } from '../../db/client.ts'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { type AuthorizationRow, createAuthorizationRepository } from './repository.ts'
import { AuthorizationIdParamsSchema, AuthorizationSchema, decodeOAuthCursor } from './schemas.ts'

function toAuthorization(r: AuthorizationRow) {
  return {
    id: r.id,
    client_id: r.clientId,
    client_name: r.clientName,
    scopes: r.scopes,
    granted: r.grantedAt.toISOString(),
    last_used: r.lastUsedAt?.toISOString() ?? null,
  }
}

/** The account export's section of the apps the user authorized (keyset batches of 100). */
export async function* exportAuthorizationRows(db: Db, userId: string) {
  const repo = createAuthorizationRepository(db)
  let after: { at: Date; id: string } | undefined
  for (;;) {
    const rows = await repo.list(userId, 100, after)
    for (const r of rows) yield toAuthorization(r)
    if (rows.length < 100) return
    const last = rows[rows.length - 1]
    after = { at: last.grantedAt, id: last.id }
  }
}

/** The user's side of OAuth: which third-party apps may read the account, and taking that back. */
const authorizationRoutes: FastifyPluginAsyncTypebox = async function authorizationRoutes(app) {
  const repo = createAuthorizationRepository(app.db)
  // The caller's own grants only; third-party tokens never reach these routes (no OAuth scope opens them).
  app.addHook('onRequest', app.authenticate)
  const base = { tags: ['user'], security: SECURITY.bearer }

  app.get(
    '/users/me/authorizations',
    {
      schema: {
        ...base,
        summary: 'The third-party apps I allowed into my account',
        description:
          'Each grant: the app, the scopes it holds (what the user ticked on the consent page, added up over consents), when it was granted and when one of its tokens was last used on the API (to the minute). Newest first.',
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(AuthorizationSchema), ...errorResponses(400, 401) },
      },
    },
    async function listAuthorizations(request) {
      const after = decodeOAuthCursor(request.query.cursor)
      return keysetPage(
        request.query,
        (take) => repo.list(request.user.sub, take, after),
        toAuthorization,
        (r) => encodeTimeCursor(r.grantedAt, r.id),
      )
    },
  )

  app.delete(
    '/users/me/authorizations/:id',
    {
      schema: {
        ...base,
        summary: 'Remove an app’s access to my account',
        description:
          'Revokes the grant and every code, access token and refresh token of it at once: the app’s next API request is refused (`401 invalid_token`), in every process, and its webhook subscriptions (and mine that ask for it) get `authorization.revoked`. Another user’s grant, or one already removed: `404 not_found`. The app may ask again; the user then sees the consent page again.',
        params: AuthorizationIdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function revokeAuthorization(request) {
      // authorization.revoked (webhooks) commits with the revocation.
      const ended = await app.db.transaction(async (tx) => {
        const grant = await repo.revoke(request.user.sub, request.params.id, tx)
        if (grant) await app.webhooks.authorizationRevoked(tx, [grant])
        return grant
      })
      if (!ended) throw errors.notFound('No such authorization.')
      return SUCCESS
    },
  )
}

export default authorizationRoutes
