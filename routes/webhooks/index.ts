import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type TObject, Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  IdParamsSchema,
  PageSchema,
  PaginationQuerySchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { createOAuthClientRepository } from '../oauth/repository.ts'
import {
  type AttemptRow,
  type MessageRow,
  type Owner,
  type SubscriptionRow,
  createWebhookRepository,
  webhookId,
} from './repository.ts'
import {
  AttemptSchema,
  ClientParamsSchema,
  MAX_SUBSCRIPTIONS,
  MessageIdParamsSchema,
  MessageSchema,
  OAuthClientParamsSchema,
  RotateQuerySchema,
  SubscriptionCreateSchema,
  SubscriptionPatchSchema,
  SubscriptionSchema,
  SubscriptionWithSecretSchema,
  TestSentSchema,
} from './schemas.ts'
import { TargetRefused, checkTarget } from './targets.ts'

function toSubscription(s: SubscriptionRow) {
  return {
    id: s.id,
    url: s.url,
    event_types: s.eventTypes,
    description: s.description,
    status: s.status,
    disabled_reason: s.disabledReason,
    disabled_at: s.disabledAt?.toISOString() ?? null,
    user_id: s.userId,
    client_id: s.clientId,
    oauth_client_id: s.oauthClientId,
    created: s.createdAt.toISOString(),
    updated: s.updatedAt.toISOString(),
  }
}

function toMessage(m: MessageRow) {
  return {
    id: webhookId(m.id),
    status: m.status,
    attempts: m.attempts,
    event_count: m.eventCount,
    created: m.createdAt.toISOString(),
    delivered_at: m.deliveredAt?.toISOString() ?? null,
    next_attempt_at: m.status === 'pending' ? m.nextAttemptAt.toISOString() : null,
  }
}

function toAttempt(a: AttemptRow) {
  return {
    message_id: webhookId(a.messageId),
    attempt: a.attempt,
    status_code: a.statusCode,
    latency_ms: a.latencyMs,
    error: a.error,
    at: a.at.toISOString(),
  }
}

/** `msg_<32 hex>` back to the row id. */
const messageUuid = (id: string) => id.slice(4).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')

export const WEBHOOKS_DESCRIPTION =
  'Deliveries follow Standard Webhooks (https://www.standardwebhooks.com): a POST with `webhook-id` (the same on every retry of a ' +
  'message: use it to drop duplicates), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature: v1,<base64 ' +
  'HMAC-SHA256 of "{id}.{timestamp}.{body}">` (two signatures for a while after a rotation); any Standard Webhooks library verifies ' +
  'them with the `whsec_` secret. A body is one event `{type, timestamp, data}`, or when many changes arrive at once ' +
  '`{type: "batch", timestamp, data: {events: [...]}}` (at most 100). `data` is thin: `user_id`, the change `seq` (for ' +
  '`GET /v1/sync?cursor=`), and the `id` or measurement `range` that changed, never the health data itself; ' +
  '`authorization.revoked` carries `user_id`, `client_id` and `grant_id` of a grant to a third-party app that ended (the user ' +
  'removed it, a refresh token was used twice, the account was deleted, an admin revoked the app). A 2xx answers; anything ' +
  'else (a redirect too: never followed) or no answer within WEBHOOK_TIMEOUT_MS (10 s) is retried after 5 s, 5 min, 30 min, 2 h, ' +
  '5 h, 10 h, 14 h, 20 h and 24 h (±10 %; a longer Retry-After is honoured). A `410` disables the subscription at once; a message ' +
  'that fails every retry (about three days) disables it too, and the owning account is e-mailed. Delivery is at least once, and ' +
  'messages of one subscription may arrive out of order (up to WEBHOOK_MAX_IN_FLIGHT at once): order by `seq`.'

export interface SubscriptionRoutesOptions {
  /** The owner of the subscriptions these routes manage, from the request (checked by the route's hooks). */
  owner(request: FastifyRequest): Promise<Owner>
  tag: string
  /** The path params before the subscription id (`client_id` under admin), if any. */
  params?: TObject
  security: typeof SECURITY.bearer
  /** What the owner is, in summaries. */
  whose: string
}

/**
 * Subscription management, written once for both owners: an account (`/v1/webhooks`) and, for admins, a
 * client app (`/v1/admin/clients/:client_id/webhooks`). Every query is scoped to the owner: another
 * owner's subscription id answers the 404 of a missing one.
 */
export const subscriptionRoutes: FastifyPluginAsyncTypebox<SubscriptionRoutesOptions> =
  async function subscriptionRoutes(app, options) {
    const repo = createWebhookRepository(app.db)
    const { tag, security, whose } = options
    const noSuch = () => errors.notFound('No such webhook subscription.')
    const withParams = (extra?: TObject) =>
      options.params
        ? extra
          ? Type.Composite([options.params, extra], { additionalProperties: false })
          : options.params
        : extra

    async function owned(request: FastifyRequest, id: string): Promise<SubscriptionRow> {
      const row = await repo.get(await options.owner(request), id)
      if (!row) throw noSuch()
      return row
    }

    async function checkUrlOrRefuse(url: string) {
      try {
        await checkTarget(url, app.webhooks.policy)
      } catch (err) {
        if (err instanceof TargetRefused) throw errors.validation([{ field: 'url', problem: err.message }])
        throw err
      }
    }

    app.post(
      '/webhooks',
      {
        schema: {
          tags: [tag],
          summary: `Subscribe a URL to ${whose} data changes`,
          description: `Answers the subscription with its signing \`secret\`, shown this once. At most ${MAX_SUBSCRIPTIONS} subscriptions per owner (\`409 too_many_webhooks\`). The URL is checked now (\`400 validation_failed\` on \`url\`) and again at every delivery. ${WEBHOOKS_DESCRIPTION}`,
          security,
          ...(options.params ? { params: options.params } : {}),
          body: SubscriptionCreateSchema,
          response: { 201: SubscriptionWithSecretSchema, ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
        },
      },
      async function createSubscription(request, reply) {
        const owner = await options.owner(request)
        await checkUrlOrRefuse(request.body.url)
        const existing = await repo.list(owner, MAX_SUBSCRIPTIONS)
        if (existing.length >= MAX_SUBSCRIPTIONS) {
          throw errors.conflict(
            'too_many_webhooks',
            `At most ${MAX_SUBSCRIPTIONS} webhook subscriptions; delete one first.`,
          )
        }
        const row = await repo.create(owner, {
          url: request.body.url,
          eventTypes: request.body.event_types,
          description: request.body.description ?? null,
        })
        if (!('userId' in owner)) {
          await app.audit.record(request, { action: 'webhook.create', targetType: 'webhook', targetId: row.id })
        }
        return reply.status(201).send({ ...toSubscription(row), secret: row.secret })
      },
    )

    app.get(
      '/webhooks',
      {
        schema: {
          tags: [tag],
          summary: `${whose[0].toUpperCase()}${whose.slice(1)} webhook subscriptions, newest first`,
          security,
          ...(options.params ? { params: options.params } : {}),
          querystring: PaginationQuerySchema,
          response: { 200: PageSchema(SubscriptionSchema), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function listSubscriptions(request) {
        const owner = await options.owner(request)
        const after = decodeTimeCursor(request.query.cursor)
        return keysetPage(
          request.query,
          (take) => repo.list(owner, take, after),
          toSubscription,
          (r) => encodeTimeCursor(r.createdAt, r.id),
        )
      },
    )

    app.get(
      '/webhooks/:id',
      {
        schema: {
          tags: [tag],
          summary: 'One webhook subscription (never its secret)',
          security,
          params: withParams(IdParamsSchema),
          response: { 200: SubscriptionSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function getSubscription(request) {
        return toSubscription(await owned(request, (request.params as { id: string }).id))
      },
    )

    app.patch(
      '/webhooks/:id',
      {
        schema: {
          tags: [tag],
          summary: 'Change the URL, the event types, the description, or enable/disable',
          description:
            'A new URL is checked as at creation. `status: active` re-enables a subscription that was disabled (by its owner, a 410 or failures).',
          security,
          params: withParams(IdParamsSchema),
          body: SubscriptionPatchSchema,
          response: { 200: SubscriptionSchema, ...errorResponses(400, 401, 403, 404, 413, 415) },
        },
      },
      async function updateSubscription(request) {
        const { id } = request.params as { id: string }
        const current = await owned(request, id)
        const body = request.body
        if (body.url !== undefined) await checkUrlOrRefuse(body.url)
        const owner = await options.owner(request)
        const row = await repo.update(
          current.id,
          { url: body.url, eventTypes: body.event_types, description: body.description, status: body.status },
          !('userId' in owner) ? 'admin' : 'owner',
        )
        if (!row) throw noSuch()
        if (!('userId' in owner)) {
          await app.audit.record(request, { action: 'webhook.update', targetType: 'webhook', targetId: row.id })
        }
        return toSubscription(row)
      },
    )

    app.post(
      '/webhooks/:id/rotate',
      {
        schema: {
          tags: [tag],
          summary: 'A new signing secret (shown once)',
          description:
            'The previous secret keeps signing too, as a second `v1,` signature of each delivery, for `overlap_s` seconds (default a day), so the receiver can switch without refusing a delivery.',
          security,
          params: withParams(IdParamsSchema),
          querystring: RotateQuerySchema,
          response: { 200: SubscriptionWithSecretSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function rotateSecret(request) {
        const { id } = request.params as { id: string }
        await owned(request, id)
        const row = await repo.rotate(id, request.query.overlap_s)
        if (!row) throw noSuch()
        const owner = await options.owner(request)
        if (!('userId' in owner)) {
          await app.audit.record(request, { action: 'webhook.rotate', targetType: 'webhook', targetId: row.id })
        }
        return { ...toSubscription(row), secret: row.secret }
      },
    )

    app.delete(
      '/webhooks/:id',
      {
        schema: {
          tags: [tag],
          summary: 'Delete a webhook subscription',
          description: 'Its queued messages and delivery log go with it; nothing more is sent.',
          security,
          params: withParams(IdParamsSchema),
          response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function deleteSubscription(request) {
        const { id } = request.params as { id: string }
        await owned(request, id)
        if (!(await repo.remove(id))) throw noSuch()
        const owner = await options.owner(request)
        if (!('userId' in owner)) {
          await app.audit.record(request, { action: 'webhook.delete', targetType: 'webhook', targetId: id })
        }
        return SUCCESS
      },
    )

    app.post(
      '/webhooks/:id/test',
      {
        schema: {
          tags: [tag],
          summary: 'Send a test event',
          description:
            'Queues a `webhook.test` event `{subscription_id}` for this subscription, whatever its event types, delivered and retried like any other (see the delivery log).',
          security,
          params: withParams(IdParamsSchema),
          response: { 202: TestSentSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function sendTest(request, reply) {
        const { id } = request.params as { id: string }
        const sub = await owned(request, id)
        const body = JSON.stringify({
          type: 'webhook.test',
          timestamp: new Date().toISOString(),
          data: { subscription_id: sub.id },
        })
        const message = await repo.enqueueMessage(sub.id, body)
        return reply.status(202).send({ message_id: webhookId(message.id) })
      },
    )

    app.get(
      '/webhooks/:id/messages',
      {
        schema: {
          tags: [tag],
          summary: 'The messages of a subscription, newest first',
          description: 'Pending, delivered and failed messages, kept 30 days after they were made.',
          security,
          params: withParams(IdParamsSchema),
          querystring: PaginationQuerySchema,
          response: { 200: PageSchema(MessageSchema), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function listMessages(request) {
        const { id } = request.params as { id: string }
        await owned(request, id)
        const after = decodeTimeCursor(request.query.cursor)
        return keysetPage(
          request.query,
          (take) => repo.messages(id, take, after),
          toMessage,
          (r) => encodeTimeCursor(r.createdAt, r.id),
        )
      },
    )

    app.get(
      '/webhooks/:id/attempts',
      {
        schema: {
          tags: [tag],
          summary: 'The delivery log: every attempt, newest first',
          description: "Each attempt's message id, attempt number, the receiver's status, latency and error.",
          security,
          params: withParams(IdParamsSchema),
          querystring: PaginationQuerySchema,
          response: { 200: PageSchema(AttemptSchema), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function listAttempts(request) {
        const { id } = request.params as { id: string }
        await owned(request, id)
        const after = decodeTimeCursor(request.query.cursor)
        return keysetPage(
          request.query,
          (take) => repo.attempts(id, take, after),
          toAttempt,
          (r) => encodeTimeCursor(r.at, r.id),
        )
      },
    )

    app.post(
      '/webhooks/:id/messages/:message_id/redeliver',
      {
        schema: {
          tags: [tag],
          summary: 'Send a message again now (manual redelivery)',
          description:
            'The same `webhook-id` and body, whatever the message’s state (delivered, failed or waiting), as soon as the subscription is active.',
          security,
          params: withParams(MessageIdParamsSchema),
          response: { 202: MessageSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async function redeliver(request, reply) {
        const { id, message_id } = request.params as { id: string; message_id: string }
        await owned(request, id)
        const row = await repo.redeliver(id, messageUuid(message_id))
        if (!row) throw errors.notFound('No such message.')
        return reply.status(202).send(toMessage(row))
      },
    )
  }

/** `/v1/webhooks`: the caller's own subscriptions (events of their own data). */
const webhookRoutes: FastifyPluginAsyncTypebox = async function webhookRoutes(app) {
  app.addHook('onRequest', app.authenticate)
  await app.register(subscriptionRoutes, {
    owner: async (request) => ({ userId: request.user.sub }),
    tag: 'webhooks',
    security: SECURITY.bearer,
    whose: 'my',
  })
}

/**
 * `/v1/admin/clients/:client_id/webhooks`: a client app's subscriptions, managed by admins (and the CLI)
 * until OAuth clients manage their own. They receive the events of every user with a live session
 * through that app.
 */
export const adminWebhookRoutes: FastifyPluginAsyncTypebox = async function adminWebhookRoutes(app) {
  app.addHook('onRequest', app.requireAdmin)
  await app.register(subscriptionRoutes, {
    owner: async (request) => {
      const { client_id } = request.params as { client_id: string }
      const client = await app.clientRepository.get(client_id)
      if (!client || client.revokedAt) throw errors.notFound('No such client app.')
      return { clientId: client.id }
    },
    tag: 'admin',
    params: ClientParamsSchema,
    security: SECURITY.bearer,
    whose: "a client app's users'",
  })
}

export default webhookRoutes

/**
 * `/v1/admin/oauth-clients/:client_id/webhooks`: a third-party app's subscriptions, managed by admins (and
 * the CLI). They receive the changes of the users who granted the app access, only of the types the grant's
 * scopes read (measurements:read → measurements, journal:read → check-ins, day feedback, activities and
 * intentions, insights:read → insights, profile:read → profile), `user.deleted`, and `authorization.revoked`
 * when a user's grant ends. A revoked client keeps its subscriptions: its last event says why it lost access.
 */
export const adminOAuthWebhookRoutes: FastifyPluginAsyncTypebox = async function adminOAuthWebhookRoutes(app) {
  const clients = createOAuthClientRepository(app.db)
  app.addHook('onRequest', app.requireAdmin)
  await app.register(subscriptionRoutes, {
    owner: async (request) => {
      const { client_id } = request.params as { client_id: string }
      const client = await clients.get(client_id)
      if (!client) throw errors.notFound('No such OAuth client.')
      return { oauthClientId: client.id }
    },
    tag: 'admin',
    params: OAuthClientParamsSchema,
    security: SECURITY.bearer,
    whose: "a third-party app's users'",
  })
}
