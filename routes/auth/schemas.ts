import { type TSchema, Type } from '@sinclair/typebox'
import { DateTimeSchema, ErrorSchema, UuidSchema } from '../common.ts'
import { PASSWORD_MAX, PASSWORD_MIN, PASSWORD_SPECIALS } from './passwords.ts'

const POLICY = `Requirements: ${PASSWORD_MIN}..${PASSWORD_MAX} characters; at least one lowercase letter, one uppercase letter, one digit (0-9) and one special character from the set (${PASSWORD_SPECIALS}). The ~49,000 most common passwords are refused (\`password_too_common\`).`

export const EmailSchema = Type.String({
  format: 'email',
  maxLength: 254,
  description: 'User email address used as the login identifier (compared ignoring case).',
  examples: ['spongebob@bikinibottom.com'],
})

export const NewPasswordSchema = Type.String({
  minLength: PASSWORD_MIN,
  maxLength: PASSWORD_MAX,
  description: `User password. ${POLICY}`,
  examples: ['BigBob27!'],
})

// Login takes any string: the policy may have changed since the password was set.
const LoginPasswordSchema = Type.String({ minLength: 1, maxLength: 1024, examples: ['BigBob27!'] })

export const ClientTokenHeadersSchema = Type.Object({
  'x-auth-token': Type.Optional(
    Type.String({ description: 'Token protecting non-jwt routes. Format: <secret>+<clientId> (base64 encoded)' }),
  ),
})

export const RegisterBodySchema = Type.Object(
  {
    email: EmailSchema,
    password: NewPasswordSchema,
    first_name: Type.String({ minLength: 1, maxLength: 150, examples: ['Sponge Bob'] }),
    last_name: Type.String({ minLength: 1, maxLength: 150, examples: ['Squarepants'] }),
    toc_accepted_at: Type.String({
      format: 'date-time',
      description: 'Timestamp when the Terms of Service were accepted',
      examples: ['2024-07-01T12:34:56Z'],
    }),
    privacy_policy_accepted_at: Type.String({
      format: 'date-time',
      description: 'Timestamp when the Privacy Policy was accepted',
      examples: ['2024-07-01T12:34:56Z'],
    }),
  },
  { additionalProperties: false },
)

export const LoginBodySchema = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: 254, examples: ['garryTheSnail@bikinibottom.com'] }),
    password: LoginPasswordSchema,
  },
  { additionalProperties: false },
)

export const TokensSchema = Type.Object(
  {
    access: Type.String({
      description: 'JWT access token used to authorize API requests (claims sub, sid, role, nbf, exp)',
    }),
    refresh: Type.String({
      description: 'JWT refresh token used to obtain a new access token (typ "refresh", single use)',
    }),
    expiresIn: Type.Number({ minimum: 0, description: 'Seconds until the access token expires', examples: [3600] }),
  },
  { additionalProperties: false, description: 'Access and refresh token information' },
)

export const RefreshBodySchema = Type.Object(
  { refresh: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
)

export const EmailBodySchema = Type.Object({ email: EmailSchema }, { additionalProperties: false })

export const ConfirmNewPasswordBodySchema = Type.Object(
  {
    email: EmailSchema,
    verification_code: Type.String({ minLength: 1, maxLength: 32, examples: ['123456'] }),
    new_password: NewPasswordSchema,
  },
  { additionalProperties: false },
)

export const VerifyEmailBodySchema = Type.Object(
  { email: EmailSchema, code: Type.String({ minLength: 1, maxLength: 32, examples: ['123456'] }) },
  { additionalProperties: false },
)

export const VerifyEmailQuerySchema = Type.Object(
  { email: EmailSchema, code: Type.String({ minLength: 1, maxLength: 32 }) },
  { additionalProperties: false },
)

export const ChangePasswordBodySchema = Type.Object(
  {
    password_old: Type.String({ minLength: 1, maxLength: 1024 }),
    password_new: NewPasswordSchema,
  },
  { additionalProperties: false },
)

const UaPartSchema = (extra: string) =>
  Type.Object(
    { family: Type.Union([Type.String(), Type.Null()]), [extra]: Type.Union([Type.String(), Type.Null()]) },
    { additionalProperties: false },
  )

export const AuthHistoryEntrySchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    date_time: DateTimeSchema,
    success: Type.Boolean(),
    reason: Type.Union([Type.String(), Type.Null()], {
      description:
        'Why a failed attempt failed: invalid_credentials, account_locked, account_disabled, too_many_sessions, forbidden',
    }),
    type: Type.Union([Type.Literal('login'), Type.Literal('refresh')], {
      description: '`login`: a password login attempt; `refresh`: the session renewed its tokens',
    }),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    country: Type.Union(
      [
        Type.Object(
          {
            iso: Type.String({ description: 'ISO 3166-1 alpha-2', examples: ['FR'] }),
            name_en: Type.String({ examples: ['France'] }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'Where the address is registered; null for private, loopback and unknown addresses' },
    ),
    city: Type.Union(
      [
        Type.Object(
          {
            name_en: Type.Union([Type.String(), Type.Null()], { examples: ['Paris'] }),
            region: Type.Union([Type.String(), Type.Null()], { examples: ['Île-de-France'] }),
            lat: Type.Union([Type.Number(), Type.Null()], { examples: [48.85341] }),
            lon: Type.Union([Type.Number(), Type.Null()], { examples: [2.3488] }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: 'The city of the address, with its coordinates (city-level accuracy at best)' },
    ),
    map_links: Type.Union(
      [Type.Object({ google: Type.String({ format: 'uri' }) }, { additionalProperties: false }), Type.Null()],
      { description: 'The coordinates on a map' },
    ),
    browser: UaPartSchema('version'),
    operating_system: UaPartSchema('version'),
    device: Type.Object(
      {
        brand: Type.Union([Type.String(), Type.Null()]),
        family: Type.Union([Type.String(), Type.Null()]),
        model: Type.Union([Type.String(), Type.Null()]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

/** A login's 401: the usual error, or `mfa_required` with the token for the second step. */
export const LoginErrorSchema = Type.Object(
  {
    ...ErrorSchema.properties,
    mfa_token: Type.Optional(
      Type.String({
        description:
          'With `mfa_required` only: single use, valid `mfa_token_expires_in` seconds, from the same client app, for `POST /v1/auth/mfa/verify`.',
      }),
    ),
    mfa_token_expires_in: Type.Optional(Type.Integer({ minimum: 0, examples: [300] })),
  },
  { additionalProperties: false, description: 'Error (with `mfa_required`: the token of the second step)' },
)

const Nullable = <T extends TSchema>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description ? { description } : {})
const NullableString = Nullable(Type.String())

export const SessionSchema = Type.Object(
  {
    id: UuidSchema,
    current: Type.Boolean({ description: 'True for the session of the access token making this request.' }),
    client: Nullable(
      Type.Object({ id: UuidSchema, name: Type.String() }, { additionalProperties: false }),
      'The client app that logged in, null if it has been deleted.',
    ),
    created: DateTimeSchema,
    last_used: DateTimeSchema,
    expires: DateTimeSchema,
    ip: NullableString,
    user_agent: NullableString,
    browser: Type.Object({ family: NullableString, version: NullableString }, { additionalProperties: false }),
    operating_system: Type.Object({ family: NullableString, version: NullableString }, { additionalProperties: false }),
    device: Type.Object(
      { brand: NullableString, family: NullableString, model: NullableString },
      { additionalProperties: false },
    ),
    method: Type.Union([Type.Literal('password'), Type.Literal('passkey'), Type.Literal('mfa')], {
      description: 'How the session was opened: the password alone, a passkey, or the password and a second factor.',
    }),
  },
  { additionalProperties: false },
)

export const SessionParamsSchema = Type.Object({ id: UuidSchema }, { additionalProperties: false })
