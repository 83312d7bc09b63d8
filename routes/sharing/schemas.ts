import { Type } from '@sinclair/typebox'
import { DateTimeSchema, UuidSchema } from '../common.ts'
import { SCOPES, type ShareRow } from './repository.ts'

export const ScopeSchema = Type.Union(
  SCOPES.map((s) => Type.Literal(s)),
  { description: 'A data domain the viewer may read' },
)
export const ScopesSchema = Type.Array(ScopeSchema, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true })

export const PersonSchema = Type.Object(
  { id: UuidSchema, email: Type.String(), first_name: Type.String(), last_name: Type.String() },
  { additionalProperties: false },
)

const NullableTime = Type.Union([DateTimeSchema, Type.Null()])
const common = {
  id: UuidSchema,
  status: Type.Union([Type.Literal('pending'), Type.Literal('active')]),
  scopes: Type.Array(ScopeSchema),
  expires_at: Type.Union([DateTimeSchema, Type.Null()], {
    description: 'When a pending invite expires; null once accepted',
  }),
  accepted_at: NullableTime,
  created: DateTimeSchema,
  updated: DateTimeSchema,
}

/** A share as its owner sees it. */
export const ShareSchema = Type.Object({ ...common, viewer: PersonSchema }, { additionalProperties: false })
/** A share as its viewer sees it. */
export const SharedSchema = Type.Object({ ...common, owner: PersonSchema }, { additionalProperties: false })

export const InviteBodySchema = Type.Object(
  { email: Type.String({ format: 'email', maxLength: 254 }), scopes: ScopesSchema },
  { additionalProperties: false },
)
export const ScopesBodySchema = Type.Object({ scopes: ScopesSchema }, { additionalProperties: false })

function base(r: ShareRow) {
  return {
    id: r.id,
    status: r.status,
    scopes: r.scopes as (typeof SCOPES)[number][],
    expires_at: r.status === 'pending' ? (r.expiresAt?.toISOString() ?? null) : null,
    accepted_at: r.acceptedAt?.toISOString() ?? null,
    created: r.createdAt.toISOString(),
    updated: r.updatedAt.toISOString(),
  }
}

export function toShare(r: ShareRow) {
  return {
    ...base(r),
    viewer: { id: r.viewerId, email: r.viewerEmail, first_name: r.viewerFirstName, last_name: r.viewerLastName },
  }
}

export function toShared(r: ShareRow) {
  return {
    ...base(r),
    owner: { id: r.ownerId, email: r.ownerEmail, first_name: r.ownerFirstName, last_name: r.ownerLastName },
  }
}
