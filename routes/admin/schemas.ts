import { Type } from '@sinclair/typebox'
import { DateTimeSchema, PaginationQuerySchema, UuidSchema } from '../common.ts'

const Nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Union([s, Type.Null()])

export const AdminUserSchema = Type.Object(
  {
    id: UuidSchema,
    email: Type.String(),
    first_name: Type.String(),
    last_name: Type.String(),
    role: Type.Union([Type.Literal('user'), Type.Literal('admin')]),
    email_verified: Type.Boolean(),
    disabled_at: Nullable(DateTimeSchema),
    created: DateTimeSchema,
    updated: DateTimeSchema,
  },
  { additionalProperties: false, description: 'An account as administrators see it (no health data)' },
)

export const AdminUserDetailSchema = Type.Object(
  { ...AdminUserSchema.properties, active_sessions: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)

export const AdminUsersQuerySchema = Type.Object(
  {
    ...PaginationQuerySchema.properties,
    email: Type.Optional(
      Type.String({ minLength: 1, maxLength: 254, description: 'Part of the e-mail address, any case.' }),
    ),
    disabled: Type.Optional(Type.Boolean({ description: 'Only disabled (true) or only enabled (false) accounts.' })),
  },
  { additionalProperties: false },
)

export const DisableBodySchema = Type.Object(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: 500,
      pattern: '\\S',
      description: 'Why, for the audit log (required: a disabled account is a person locked out of their data).',
    }),
  },
  { additionalProperties: false },
)

export const SignOutResultSchema = Type.Object(
  {
    status: Type.Literal('success'),
    sessions_revoked: Type.Integer({ minimum: 0, description: 'How many active sessions were ended.' }),
  },
  { additionalProperties: false },
)

export const ClientSchema = Type.Object(
  {
    id: UuidSchema,
    name: Type.String(),
    created: DateTimeSchema,
    rotated: Nullable(DateTimeSchema),
    revoked: Nullable(DateTimeSchema),
  },
  { additionalProperties: false, description: 'A client app (its secret is never shown again)' },
)

export const IssuedClientSchema = Type.Object(
  {
    client_id: UuidSchema,
    name: Type.String(),
    secret: Type.String({ description: 'Shown only in this answer; only a hash is kept.' }),
    x_auth_token: Type.String({ description: 'The x-auth-token header value: base64("<secret>+<client_id>").' }),
    created: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const CreateClientBodySchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', examples: ['NOWATCH iOS'] }) },
  { additionalProperties: false },
)

export const AuditEntrySchema = Type.Object(
  {
    id: UuidSchema,
    actor_id: Type.Union([UuidSchema, Type.Null()], { description: 'The admin who acted.' }),
    action: Type.String({ examples: ['user.disable'] }),
    target_type: Type.String({ examples: ['user'] }),
    target_id: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    created: DateTimeSchema,
  },
  { additionalProperties: false },
)

export const AuditQuerySchema = Type.Object(
  {
    ...PaginationQuerySchema.properties,
    actor_id: Type.Optional(UuidSchema),
    action: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: 'Exact action, e.g. `user.delete`.' }),
    ),
    target_type: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    target_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Entries at or after this time.' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Entries before this time.' })),
  },
  { additionalProperties: false },
)

export const RotateClientBodySchema = Type.Object(
  {
    overlap_s: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2592000,
        description: 'Seconds the old secret keeps working (0..30 days); default CLIENT_SECRET_OVERLAP_S (86400).',
      }),
    ),
  },
  { additionalProperties: false },
)
