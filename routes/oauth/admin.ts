import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { PageSchema, encodeTimeCursor, errorResponses, keysetPage } from '../common.ts'
import { type OAuthClientRow, createOAuthClientRepository } from './repository.ts'
import {
  CreateOAuthClientBodySchema,
  IssuedOAuthClientSchema,
  OAuthClientIdParamsSchema,
  OAuthClientSchema,
  PaginationQuerySchema,
  RotateOAuthClientSecretBodySchema,
  UpdateOAuthClientBodySchema,
  decodeOAuthCursor,
  redirectUriProblem,
  toOAuthClient,
} from './schemas.ts'

const ADMIN_ERRORS = [401, 403] as const

/** Refuses redirect URIs that break RFC 9700 / RFC 8252 rules (400 validation_failed naming each). */
export function checkRedirectUris(uris: string[] | undefined) {
  const details = (uris ?? []).flatMap((uri, i) => {
    const problem = redirectUriProblem(uri)
    return problem ? [{ field: `body.redirect_uris.${i}`, problem }] : []
  })
  if (details.length) throw errors.validation(details)
}

const issued = (row: OAuthClientRow, secret: string | null) => ({ ...toOAuthClient(row), client_secret: secret })

/** Admins register the third-party apps (OAuth clients); every route is audited (plugins/audit.ts). */
const oauthClientAdminRoutes: FastifyPluginAsyncTypebox = async function oauthClientAdminRoutes(app) {
  const { db, audit } = app
  const clients = createOAuthClientRepository(db)
  app.addHook('onRequest', app.requireAdmin)
  const schemaBase = { tags: ['admin'], security: SECURITY.bearer }
  const notFound = () => errors.notFound('No such OAuth client.')

  app.post(
    '/admin/oauth-clients',
    {
      schema: {
        ...schemaBase,
        summary: 'Register a third-party app (OAuth client)',
        description:
          'Answers `client_id` and, for a confidential client, `client_secret` (in this answer only; the server keeps its SHA-256). A public client (`public: true`: mobile app, SPA, device) has no secret and must use PKCE, as every client must. The client may use the authorization code, refresh and device grants unless `grant_types` restricts it, and ask for `scopes` only. Confidential clients authenticate with HTTP Basic (`client_secret_basic`).',
        body: CreateOAuthClientBodySchema,
        response: { 201: IssuedOAuthClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 413, 415) },
      },
    },
    async function createOAuthClient(request, reply) {
      const body = request.body
      checkRedirectUris(body.redirect_uris)
      const { row, secret } = await db.transaction(async (tx) => {
        const made = await clients.create(
          {
            name: body.name.trim(),
            redirectUris: body.redirect_uris,
            scopes: body.scopes,
            grantTypes: body.grant_types,
            public: body.public ?? false,
          },
          tx,
        )
        await audit.record(
          request,
          {
            action: 'oauth_client.create',
            targetType: 'oauth_client',
            targetId: made.row.id,
            details: { name: made.row.name, public: made.secret === null, scopes: made.row.scopes },
          },
          tx,
        )
        return made
      })
      return reply.status(201).send(issued(row, secret))
    },
  )

  app.get(
    '/admin/oauth-clients',
    {
      schema: {
        ...schemaBase,
        summary: 'List the third-party apps (OAuth clients), newest first',
        querystring: PaginationQuerySchema,
        response: { 200: PageSchema(OAuthClientSchema), ...errorResponses(400, ...ADMIN_ERRORS) },
      },
    },
    async function listOAuthClients(request) {
      const after = decodeOAuthCursor(request.query.cursor)
      const page = await keysetPage(
        request.query,
        (take) => clients.list(take, after),
        toOAuthClient,
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
      await audit.record(request, { action: 'oauth_client.list', targetType: 'oauth_client' })
      return page
    },
  )

  app.patch(
    '/admin/oauth-clients/:id',
    {
      schema: {
        ...schemaBase,
        summary: 'Change a third-party app (name, redirect URIs, scopes, grants)',
        description:
          'Takes effect on the next request. Narrowing `scopes` does not change grants already given (revoke the client, or users revoke their grant, to withdraw them). A revoked client: `409 client_revoked`.',
        params: OAuthClientIdParamsSchema,
        body: UpdateOAuthClientBodySchema,
        response: { 200: OAuthClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409, 413, 415) },
      },
    },
    async function updateOAuthClient(request) {
      const body = request.body
      checkRedirectUris(body.redirect_uris)
      const row = await db.transaction(async (tx) => {
        const changed = await clients.update(
          request.params.id,
          {
            ...(body.name !== undefined ? { name: body.name.trim() } : {}),
            ...(body.redirect_uris ? { redirectUris: body.redirect_uris } : {}),
            ...(body.scopes ? { scopes: body.scopes } : {}),
            ...(body.grant_types ? { grantTypes: body.grant_types } : {}),
          },
          tx,
        )
        if (changed) {
          await audit.record(
            request,
            {
              action: 'oauth_client.update',
              targetType: 'oauth_client',
              targetId: changed.id,
              details: { fields: Object.keys(body) },
            },
            tx,
          )
        }
        return changed
      })
      if (row) return toOAuthClient(row)
      if (!(await clients.get(request.params.id))) throw notFound()
      throw errors.conflict('client_revoked', 'This OAuth client is revoked; register a new one.')
    },
  )

  app.post(
    '/admin/oauth-clients/:id/rotate-secret',
    {
      // The body is optional: an absent one is the empty object (the default overlap).
      preValidation: async function emptyBodyIsEmptyObject(request) {
        request.body ??= {}
      },
      schema: {
        ...schemaBase,
        summary: 'Give a confidential third-party app a new client secret',
        description:
          "The new `client_secret` is in this answer only. The old one keeps working at the token, revocation and introspection endpoints for `overlap_s` seconds (default CLIENT_SECRET_OVERLAP_S, 24 h; `previous_secret_expires` says until when), so the integrator's servers can switch one by one; `overlap_s: 0` stops it at once (a leaked secret). Only the secret just replaced overlaps: rotating again ends any older one at once. Issued tokens are not touched. A public client has no secret: `409 public_client`; a revoked one: `409 client_revoked`.",
        params: OAuthClientIdParamsSchema,
        body: RotateOAuthClientSecretBodySchema,
        response: { 200: IssuedOAuthClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404, 409, 413, 415) },
      },
    },
    async function rotateOAuthClientSecret(request) {
      const overlapS = request.body.overlap_s ?? app.config.CLIENT_SECRET_OVERLAP_S
      const rotated = await db.transaction(async (tx) => {
        const r = await clients.rotate(request.params.id, overlapS, tx)
        if (r) {
          await audit.record(
            request,
            {
              action: 'oauth_client.rotate_secret',
              targetType: 'oauth_client',
              targetId: r.row.id,
              details: { overlap_s: overlapS },
            },
            tx,
          )
        }
        return r
      })
      if (rotated) return issued(rotated.row, rotated.secret)
      const existing = await clients.get(request.params.id)
      if (!existing) throw notFound()
      if (existing.revokedAt)
        throw errors.conflict('client_revoked', 'This OAuth client is revoked; register a new one.')
      throw errors.conflict('public_client', 'A public client has no secret to rotate.')
    },
  )

  app.post(
    '/admin/oauth-clients/:id/revoke',
    {
      schema: {
        ...schemaBase,
        summary: 'Revoke a third-party app',
        description:
          'The client can no longer authorize, exchange or refresh, and every grant, code and token it holds is deleted at once: its access tokens stop working on the next request, in every process. Each grant that ends is announced as `authorization.revoked` to the webhook subscriptions of the client. Revoking twice keeps the first time.',
        params: OAuthClientIdParamsSchema,
        response: { 200: OAuthClientSchema, ...errorResponses(400, ...ADMIN_ERRORS, 404) },
      },
    },
    async function revokeOAuthClient(request) {
      const row = await db.transaction(async (tx) => {
        const r = await clients.revoke(request.params.id, tx)
        if (r) {
          await audit.record(request, { action: 'oauth_client.revoke', targetType: 'oauth_client', targetId: r.id }, tx)
          await app.webhooks.authorizationRevoked(tx, r.grants)
        }
        return r
      })
      if (!row) throw notFound()
      return toOAuthClient(row)
    },
  )
}

export default oauthClientAdminRoutes
