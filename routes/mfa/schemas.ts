import { Type } from '@sinclair/typebox'
import { DateTimeSchema, UuidSchema } from '../common.ts'

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])
const B64Url = (description: string, maxLength = 4096) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$', description })
const Open = { additionalProperties: true }

export const CodeSchema = Type.String({
  minLength: 6,
  maxLength: 32,
  description:
    'A 6-digit code from the authenticator app, or one of the recovery codes (`XXXXX-XXXXX`; case, spaces and dashes do not matter).',
  examples: ['123456'],
})

export const TotpEnrolmentSchema = Type.Object(
  {
    secret: Type.String({ description: 'The shared secret, base32 (RFC 4648), for typing into an app by hand.' }),
    otpauth_uri: Type.String({ description: '`otpauth://totp/…` (the Key URI format authenticator apps read).' }),
    qr_code: Type.String({ description: 'The otpauth URI as a QR code: `data:image/svg+xml;base64,…`.' }),
    algorithm: Type.Literal('SHA1'),
    digits: Type.Literal(6),
    period: Type.Literal(30),
  },
  { additionalProperties: false },
)

export const CodeBodySchema = Type.Object({ code: CodeSchema }, { additionalProperties: false })

export const RecoveryCodesSchema = Type.Object(
  {
    recovery_codes: Type.Array(Type.String({ examples: ['7K3QD-M9W2X'] }), {
      minItems: 10,
      maxItems: 10,
      description: 'Ten single-use codes, shown this once: each replaces the second factor for one login.',
    }),
  },
  { additionalProperties: false },
)

export const PasskeySchema = Type.Object(
  {
    id: UuidSchema,
    name: Type.String(),
    created: DateTimeSchema,
    last_used: Type.Union([DateTimeSchema, Type.Null()]),
    device_type: Type.Union([Type.Literal('singleDevice'), Type.Literal('multiDevice')], {
      description:
        '`multiDevice`: a synced passkey (may live on several devices); `singleDevice`: bound to one authenticator.',
    }),
    backed_up: Type.Boolean(),
    transports: Type.Array(Type.String()),
    clone_warning: Type.Boolean({
      description:
        'True once the signature counter went backwards: a copy of this authenticator may exist. Such a passkey is refused; delete it.',
    }),
  },
  { additionalProperties: false },
)

export const FactorsSchema = Type.Object(
  {
    totp: Type.Union([
      Type.Object(
        { enabled: Type.Literal(true), created: DateTimeSchema, last_used: Type.Union([DateTimeSchema, Type.Null()]) },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    recovery_codes: Type.Union([
      Type.Object(
        { remaining: Type.Integer({ minimum: 0 }), created: DateTimeSchema },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    passkeys: Type.Array(PasskeySchema),
  },
  {
    additionalProperties: false,
    description: 'The second factors of the account. With none of them, logins work with the password alone.',
  },
)

export const PasskeyNameSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S', examples: ['My phone'] })

export const RenamePasskeyBodySchema = Type.Object({ name: PasskeyNameSchema }, { additionalProperties: false })

/** What navigator.credentials.create() returned, serialised as WebAuthn's `toJSON()` does. */
export const RegistrationResponseSchema = Type.Object(
  {
    id: B64Url('Credential id'),
    rawId: B64Url('Credential id'),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: B64Url('clientDataJSON', 8192),
        attestationObject: B64Url('attestationObject', 65536),
        transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })),
      },
      Open,
    ),
    authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
    clientExtensionResults: Type.Object({}, Open),
  },
  Open,
)

/** What navigator.credentials.get() returned, serialised as WebAuthn's `toJSON()` does. */
export const AuthenticationResponseSchema = Type.Object(
  {
    id: B64Url('Credential id'),
    rawId: B64Url('Credential id'),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: B64Url('clientDataJSON', 8192),
        authenticatorData: B64Url('authenticatorData', 8192),
        signature: B64Url('signature', 8192),
        userHandle: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
      },
      Open,
    ),
    authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
    clientExtensionResults: Type.Object({}, Open),
  },
  Open,
)

export const AddPasskeyBodySchema = Type.Object(
  { name: Type.Optional(PasskeyNameSchema), response: RegistrationResponseSchema },
  { additionalProperties: false },
)

/** PublicKeyCredentialCreationOptionsJSON, for `PublicKeyCredential.parseCreationOptionsFromJSON()`. */
export const RegistrationOptionsSchema = Type.Object(
  {
    rp: Type.Object({ name: Type.String(), id: Type.Optional(Type.String()) }, Open),
    user: Type.Object({ id: Type.String(), name: Type.String(), displayName: Type.String() }, Open),
    challenge: Type.String(),
    pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Number(), type: Type.String() }, Open)),
    timeout: Type.Optional(Type.Number()),
    excludeCredentials: Type.Optional(Type.Array(Type.Object({ id: Type.String(), type: Type.String() }, Open))),
    authenticatorSelection: Type.Optional(Type.Object({}, Open)),
    attestation: Type.Optional(Type.String()),
    extensions: Type.Optional(Type.Object({}, Open)),
    hints: Type.Optional(Type.Array(Type.String())),
  },
  { ...Open, description: 'Options for navigator.credentials.create(); the challenge works once, for 5 minutes.' },
)

/** PublicKeyCredentialRequestOptionsJSON, for `PublicKeyCredential.parseRequestOptionsFromJSON()`. */
export const AuthenticationOptionsSchema = Type.Object(
  {
    challenge: Type.String(),
    timeout: Type.Optional(Type.Number()),
    rpId: Type.Optional(Type.String()),
    allowCredentials: Type.Optional(Type.Array(Type.Object({ id: Type.String(), type: Type.String() }, Open))),
    userVerification: Type.Optional(Type.String()),
    extensions: Type.Optional(Type.Object({}, Open)),
    hints: Type.Optional(Type.Array(Type.String())),
  },
  { ...Open, description: 'Options for navigator.credentials.get(); the challenge works once, for 5 minutes.' },
)

export const MfaTokenSchema = Type.String({
  minLength: 20,
  maxLength: 128,
  description: 'The `mfa_token` of the `401 mfa_required` login answer.',
})

export const MfaVerifyBodySchema = Type.Object(
  {
    mfa_token: MfaTokenSchema,
    code: Type.Optional(CodeSchema),
    passkey: Type.Optional(AuthenticationResponseSchema),
  },
  { additionalProperties: false, description: 'The mfa_token and exactly one of `code` or `passkey`.' },
)

export const MfaTokenBodySchema = Type.Object({ mfa_token: MfaTokenSchema }, { additionalProperties: false })

export const PasskeyLoginBodySchema = Type.Object(
  { response: AuthenticationResponseSchema },
  { additionalProperties: false },
)

export const ReauthenticateBodySchema = Type.Object(
  {
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    code: Type.Optional(CodeSchema),
    passkey: Type.Optional(AuthenticationResponseSchema),
  },
  {
    additionalProperties: false,
    description:
      'Exactly one of: the password (enough for an account without a second factor), a code (TOTP or recovery code), or a passkey assertion.',
  },
)

export const AdminMfaResetSchema = Type.Object(
  {
    status: Type.Literal('success'),
    totp_removed: Type.Boolean(),
    passkeys_removed: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
)

export const nullableTime = (d: Date | null) => d?.toISOString() ?? null
export { Nullable }
