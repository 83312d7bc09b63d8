import { type Static, Type } from '@sinclair/typebox'

/**
 * The event types, following the change feed: `<change type>.<action>`, plus `user.deleted` (the account
 * is gone; its change log with it) and `authorization.revoked` (a user's grant to a third-party app ended). `webhook.test` is what "send a test event" sends, to any subscription.
 */
export const EVENT_TYPES = [
  'measurements.created',
  'measurements.deleted',
  ...['checkin', 'day_feedback', 'activity', 'intention', 'insight', 'share'].flatMap((t) => [
    `${t}.created`,
    `${t}.updated`,
    `${t}.deleted`,
  ]),
  'profile.updated',
  'user.deleted',
  'authorization.revoked',
] as const

export const MAX_SUBSCRIPTIONS = 20

const UrlSchema = Type.String({
  minLength: 1,
  maxLength: 2048,
  description:
    'The receiver: an `https://` URL whose host resolves only to public addresses (loopback, private, link-local, carrier-grade NAT, ' +
    'cloud metadata, IPv6 unique-local/link-local and IPv4-mapped addresses are refused, here and again at every delivery); no user ' +
    'name or password in it. With WEBHOOK_ALLOW_PRIVATE_TARGETS=true (development only) `http://` and private addresses are accepted.',
})
const EventTypesSchema = Type.Array(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))), {
  minItems: 1,
  maxItems: EVENT_TYPES.length,
  uniqueItems: true,
  description: 'The events to receive.',
})
const DescriptionSchema = Type.String({ maxLength: 200 })

export const SubscriptionCreateSchema = Type.Object(
  {
    url: UrlSchema,
    event_types: EventTypesSchema,
    description: Type.Optional(DescriptionSchema),
  },
  { additionalProperties: false },
)
export type SubscriptionCreate = Static<typeof SubscriptionCreateSchema>

export const SubscriptionPatchSchema = Type.Object(
  {
    url: Type.Optional(UrlSchema),
    event_types: Type.Optional(EventTypesSchema),
    description: Type.Optional(Type.Union([DescriptionSchema, Type.Null()])),
    status: Type.Optional(
      Type.Union([Type.Literal('active'), Type.Literal('disabled')], {
        description:
          '`active` re-enables a disabled subscription: the messages it had waiting are sent; changes made while it was disabled were not queued (catch up with `GET /v1/sync` from the last `seq` received).',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type SubscriptionPatch = Static<typeof SubscriptionPatchSchema>

export const SubscriptionSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    url: Type.String(),
    event_types: Type.Array(Type.String()),
    description: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    disabled_reason: Type.Union([Type.String(), Type.Null()], {
      description:
        '`receiver_gone` (the receiver answered 410), `failing` (a message failed every retry, ~3 days), `owner` or `admin`.',
    }),
    disabled_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    user_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The owning account.' }),
    client_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The owning client app.' }),
    oauth_client_id: Type.Union([Type.String(), Type.Null()], {
      description: 'The owning third-party (OAuth) client.',
    }),
    created: Type.String({ format: 'date-time' }),
    updated: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
)

export const SubscriptionWithSecretSchema = Type.Composite(
  [
    SubscriptionSchema,
    Type.Object({
      secret: Type.String({
        description:
          'The Standard Webhooks signing secret (`whsec_…`): shown this once. Verify deliveries with any Standard Webhooks library (e.g. `new Webhook(secret).verify(body, headers)`).',
      }),
    }),
  ],
  { additionalProperties: false },
)

export const RotateQuerySchema = Type.Object(
  {
    overlap_s: Type.Integer({
      minimum: 0,
      maximum: 604800,
      default: 86400,
      description:
        'How long the previous secret keeps signing too (a second signature in `webhook-signature`), so the receiver can switch without missing a delivery; 0 for a leaked secret.',
    }),
  },
  { additionalProperties: false },
)

export const MessageIdParamsSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    message_id: Type.String({ pattern: '^msg_[0-9a-f]{32}$', description: 'The `webhook-id` of the message.' }),
  },
  { additionalProperties: false },
)

export const MessageSchema = Type.Object(
  {
    id: Type.String({ description: 'The `webhook-id` header of every attempt of this message.' }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    event_count: Type.Integer({ description: 'Events it carries: 1, or a `batch` of several.' }),
    created: Type.String({ format: 'date-time' }),
    delivered_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    next_attempt_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When a pending message is tried next.',
    }),
  },
  { additionalProperties: false },
)

export const AttemptSchema = Type.Object(
  {
    message_id: Type.String(),
    attempt: Type.Integer({ description: '1 for the first try of the message.' }),
    status_code: Type.Union([Type.Integer(), Type.Null()], {
      description: "The receiver's HTTP status; null when none.",
    }),
    latency_ms: Type.Integer(),
    error: Type.Union([Type.String(), Type.Null()], {
      description:
        'Null on success; else `http_<status>`, `redirect` (never followed), `timeout`, `connection_failed`, `refused_address`.',
    }),
    at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
)

export const TestSentSchema = Type.Object(
  { message_id: Type.String({ description: 'The `webhook-id` of the test message.' }) },
  { additionalProperties: false },
)

export const ClientParamsSchema = Type.Object(
  { client_id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
)

export const OAuthClientParamsSchema = Type.Object(
  { client_id: Type.String({ pattern: '^nwc_[A-Za-z0-9_-]{22}$', description: 'The OAuth client_id' }) },
  { additionalProperties: false },
)
