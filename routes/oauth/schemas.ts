import { type Static, Type } from '@sinclair/typebox'
import { errors } from '../../plugins/errors.ts'
import { OAUTH_SCOPES } from '../../plugins/oauth-scopes.ts'
import { DateTimeSchema, PaginationQuerySchema, cursorInstant, decodeCursor } from '../common.ts'
import { GRANT_TYPES, type OAuthClientRow } from './repository.ts'

export const ScopeSchema = Type.Union(
  Object.keys(OAUTH_SCOPES).map((s) => Type.Literal(s)),
  {
    description: `An OAuth scope: ${Object.entries(OAUTH_SCOPES)
      .map(([s, d]) => `\`${s}\` (${d})`)
      .join('; ')}.`,
  },
)
const GrantTypeSchema = Type.Union(GRANT_TYPES.map((g) => Type.Literal(g)))

export const RedirectUriSchema = Type.String({
  minLength: 1,
  maxLength: 2000,
  description:
    'Matched exactly (RFC 9700 §2.1). `https://…`; `http://` only on a loopback address (127.0.0.1, [::1], localhost) for native apps (RFC 8252 §7.3); or a private-use scheme in reverse-domain form such as `com.example.app:/callback` (RFC 8252 §7.1). No fragment.',
})

/** Why a redirect URI is refused, or null (the rules RedirectUriSchema states). */
export function redirectUriProblem(uri: string): string | null {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'must be an absolute URI'
  }
  if (url.hash || uri.includes('#')) return 'must not have a fragment'
  if (url.protocol === 'https:') return url.hostname ? null : 'must name a host'
  if (url.protocol === 'http:') {
    return ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
      ? null
      : 'http is allowed only on a loopback address; use https'
  }
  const scheme = url.protocol.slice(0, -1)
  if (!scheme.includes('.')) return 'a private-use scheme must be in reverse-domain form (com.example.app)'
  if (['javascript', 'data', 'file', 'vbscript'].includes(scheme)) return 'this scheme is not allowed'
  return null
}

export const CreateOAuthClientBodySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'Shown to users on the consent page.' }),
    redirect_uris: Type.Array(RedirectUriSchema, { minItems: 1, maxItems: 20, uniqueItems: true }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, uniqueItems: true, description: 'What the client may ask for.' }),
    public: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'A public client (mobile app, SPA, device) has no secret and must use PKCE; default false.',
      }),
    ),
    grant_types: Type.Optional(
      Type.Array(GrantTypeSchema, {
        minItems: 1,
        uniqueItems: true,
        description: 'Default: all three (authorization_code, refresh_token, device_code).',
      }),
    ),
  },
  { additionalProperties: false },
)

export const UpdateOAuthClientBodySchema = Type.Object(
  {
    name: Type.Optional(CreateOAuthClientBodySchema.properties.name),
    redirect_uris: Type.Optional(CreateOAuthClientBodySchema.properties.redirect_uris),
    scopes: Type.Optional(CreateOAuthClientBodySchema.properties.scopes),
    grant_types: Type.Optional(Type.Array(GrantTypeSchema, { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const OAuthClientIdParamsSchema = Type.Object(
  { id: Type.String({ pattern: '^nwc_[A-Za-z0-9_-]{22}$', description: 'The client_id' }) },
  { additionalProperties: false },
)

export const OAuthClientSchema = Type.Object(
  {
    client_id: Type.String(),
    name: Type.String(),
    public: Type.Boolean(),
    redirect_uris: Type.Array(Type.String()),
    scopes: Type.Array(Type.String()),
    grant_types: Type.Array(Type.String()),
    created: DateTimeSchema,
    updated: DateTimeSchema,
    secret_rotated: Type.Union([DateTimeSchema, Type.Null()]),
    previous_secret_expires: Type.Union([DateTimeSchema, Type.Null()], {
      description: 'Until when the secret before the last rotation still works; null when it no longer does.',
    }),
    revoked: Type.Union([DateTimeSchema, Type.Null()]),
  },
  { additionalProperties: false, description: 'A third-party OAuth client (never its secret)' },
)

export const RotateOAuthClientSecretBodySchema = Type.Object(
  {
    overlap_s: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2592000,
        description:
          'Seconds the old secret keeps working (0..30 days); default CLIENT_SECRET_OVERLAP_S (86400), as for the client apps. 0 stops it at once (a leaked secret).',
      }),
    ),
  },
  { additionalProperties: false },
)

export const IssuedOAuthClientSchema = Type.Object(
  {
    ...OAuthClientSchema.properties,
    client_secret: Type.Union([Type.String(), Type.Null()], {
      description: 'Shown in this answer only (the server keeps a hash); null for a public client.',
    }),
  },
  { additionalProperties: false },
)

export const AuthorizationSchema = Type.Object(
  {
    id: Type.String({ description: 'The grant id' }),
    client_id: Type.String(),
    client_name: Type.String(),
    scopes: Type.Array(Type.String()),
    granted: DateTimeSchema,
    last_used: Type.Union([DateTimeSchema, Type.Null()], {
      description: 'Last API request with one of its tokens (to the minute).',
    }),
  },
  { additionalProperties: false, description: 'An app the user allowed into their account' },
)

export const AuthorizationIdParamsSchema = Type.Object(
  { id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) },
  { additionalProperties: false },
)

export { PaginationQuerySchema }

/** The (time, id) cursor of the OAuth lists, whose ids are the library's or `nwc_…`, not UUIDs. */
export function decodeOAuthCursor(cursor: string | undefined): { at: Date; id: string } | undefined {
  const v = decodeCursor(cursor, 2)
  if (!v) return undefined
  if (typeof v[1] !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v[1])) {
    throw errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
  }
  return { at: cursorInstant(v[0]), id: v[1] }
}

export function toOAuthClient(row: OAuthClientRow): Static<typeof OAuthClientSchema> {
  return {
    client_id: row.id,
    name: row.name,
    public: row.secretHash === null,
    redirect_uris: row.redirectUris,
    scopes: row.scopes,
    grant_types: row.grantTypes,
    created: row.createdAt.toISOString(),
    updated: row.updatedAt.toISOString(),
    secret_rotated: row.secretRotatedAt?.toISOString() ?? null,
    previous_secret_expires:
      row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > Date.now()
        ? row.previousSecretExpiresAt.toISOString()
        : null,
    revoked: row.revokedAt?.toISOString() ?? null,
  }
}
