import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { DbOrTx } from '../../db/client.ts'
import { type AttemptResult, attempt, retryDelay, signedHeaders } from './delivery.ts'
import {
  type EndedGrant,
  type MessageRow,
  type SubscriptionRow,
  createWebhookRepository,
  webhookId,
} from './repository.ts'
import { type Resolver, type TargetPolicy, systemResolver } from './targets.ts'

export interface Webhooks {
  /** The SSRF policy of subscriptions and deliveries (WEBHOOK_ALLOW_PRIVATE_TARGETS, the resolver). */
  policy: TargetPolicy
  /** Tests: resolve host names with this instead of the system's DNS. */
  setResolver(resolve: Resolver): void
  /** Queues a webhook-only event (no change log entry) in the caller's transaction: `user.deleted`. */
  announce(tx: DbOrTx, userId: string, eventType: string, data: Record<string, unknown>): Promise<void>
  /**
   * Queues `authorization.revoked` for third-party grants that ended, in the caller's transaction (the one
   * that ends them): to the grant's OAuth client's subscriptions and the user's own.
   */
  authorizationRevoked(tx: DbOrTx, grants: EndedGrant[]): Promise<void>
  /**
   * Batches new events into messages, claims the due ones and sends them. The worker calls it on a timer
   * without waiting for the answers; tests call it directly and it resolves when this round's attempts ended.
   */
  flush(options?: { wait?: boolean }): Promise<{ batched: number; claimed: number }>
  /** Resolves when every attempt started so far has ended. */
  idle(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: Webhooks
  }
}

const BATCH_EVENTS = 500
/** Events in one message at most: a burst of changes arrives as a few `batch` messages, not hundreds. */
const EVENTS_PER_MESSAGE = 100
const CLAIM = 50
const WORKER_EVERY_MS = 250
const PURGE_EVERY_MS = 3600_000
/** Delivered and failed messages (and their attempts: the delivery log) are kept this long. */
export const DELIVERY_LOG_DAYS = 30

/**
 * The webhook outbox and its worker. Events are written by a statement of the change log's own recording statement,
 * in the transaction of each change (so a change and its events commit together); the worker, in every process with
 * JOBS_ENABLED, groups them into messages per subscription and sends the due messages, claimed with
 * SKIP LOCKED and leased, so several processes share the queue and none sends a message another is
 * sending. A message is sent until a 2xx (same webhook-id and body each time: at-least-once), on the
 * Standard Webhooks schedule; a 410 disables its subscription, and so does a message that fails every
 * retry, after which the owner is e-mailed. At most WEBHOOK_MAX_IN_FLIGHT messages of one subscription
 * are in flight at once, across every process (the claim counts the subscription's leased messages).
 */
export default fp(
  async function webhookOutboxPlugin(app: FastifyInstance) {
    const { config } = app
    const repo = createWebhookRepository(app.db)
    const policy: TargetPolicy = { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, resolve: systemResolver }
    const running = new Set<Promise<void>>()
    const leaseMs = config.WEBHOOK_TIMEOUT_MS + 30_000

    app.changes.alsoWrite((rows) => repo.enqueueChanges(rows))

    async function tellOwner(subscription: SubscriptionRow, why: string) {
      app.log.warn({ webhook: { subscription: subscription.id, reason: why } }, 'webhook subscription disabled')
      if (!subscription.userId) return
      const owner = await app.userRepository.findById(subscription.userId)
      if (!owner) return
      await app.mailer.enqueue(app.db, {
        to: owner.email,
        kind: 'webhook_disabled',
        subject: 'Your NOWATCH webhook was disabled',
        text:
          `We stopped sending webhooks to ${subscription.url} (subscription ${subscription.id}): ${why}.\n\n` +
          'Fix the receiver, then enable the subscription again (PATCH /v1/webhooks/{id} with status "active"); ' +
          'the messages not delivered yet are then sent, and GET /v1/sync has every change meanwhile.',
      })
    }

    async function settle(message: MessageRow, subscription: SubscriptionRow, result: AttemptResult) {
      await repo.logAttempt({
        messageId: message.id,
        subscriptionId: subscription.id,
        attempt: message.attempts,
        statusCode: result.statusCode,
        latencyMs: result.latencyMs,
        error: result.error,
      })
      if (result.error === null) return repo.succeeded(subscription.id, message.id)
      if (result.statusCode === 410) {
        // The receiver says it wants no more (Standard Webhooks): disable; the message waits, pending.
        await repo.retryAt(subscription.id, message.id, 0)
        const disabled = await repo.disable(subscription.id, 'receiver_gone')
        if (disabled) await tellOwner(disabled, 'the receiver answered 410 Gone')
        return
      }
      const delay = retryDelay(message.attempts, result.retryAfterS)
      if (delay !== null) return repo.retryAt(subscription.id, message.id, delay)
      await repo.failed(subscription.id, message.id)
      const disabled = await repo.disable(subscription.id, 'failing')
      if (disabled) await tellOwner(disabled, `a message failed ${message.attempts} attempts over about three days`)
    }

    async function send(message: MessageRow, subscription: SubscriptionRow) {
      try {
        const secrets = [subscription.secret]
        if (
          subscription.previousSecret &&
          subscription.previousSecretExpiresAt &&
          subscription.previousSecretExpiresAt > new Date()
        ) {
          secrets.push(subscription.previousSecret)
        }
        const headers = signedHeaders(webhookId(message.id), message.body, secrets, new Date())
        const result = await attempt(subscription.url, headers, message.body, policy, config.WEBHOOK_TIMEOUT_MS)
        await settle(message, subscription, result)
      } catch (err) {
        // The lease makes the message due again; nothing is lost.
        app.log.warn({ err, webhook: { message: message.id } }, 'webhook delivery')
      }
    }

    const webhooks: Webhooks = {
      policy,
      setResolver(resolve) {
        policy.resolve = resolve
      },

      async announce(tx, userId, eventType, data) {
        await repo.enqueue(
          tx,
          userId,
          [{ userId, eventType, payload: { type: eventType, timestamp: new Date().toISOString(), data } }],
          eventType === 'user.deleted',
        )
      },

      authorizationRevoked(tx, grants) {
        return repo.enqueueAuthorizationRevoked(tx, grants)
      },

      async flush(options = {}) {
        const batched = await repo.batch(BATCH_EVENTS, EVENTS_PER_MESSAGE, () => new Date())
        const claimed = await repo.claim(CLAIM, leaseMs, config.WEBHOOK_MAX_IN_FLIGHT)
        const round: Promise<void>[] = []
        for (const { message, subscription } of claimed) {
          const p: Promise<void> = send(message, subscription).finally(() => running.delete(p))
          running.add(p)
          round.push(p)
        }
        if (options.wait !== false) await Promise.all(round)
        return { batched, claimed: claimed.length }
      },

      async idle() {
        while (running.size > 0) await Promise.allSettled([...running])
      },
    }
    app.decorate('webhooks', webhooks)

    if (config.JOBS_ENABLED) {
      let busy = false
      const timer = setInterval(() => {
        if (busy) return
        busy = true
        webhooks
          .flush({ wait: false })
          .catch((err) => app.log.warn({ err }, 'webhook worker'))
          .finally(() => {
            busy = false
          })
      }, WORKER_EVERY_MS)
      timer.unref()
      const purge = setInterval(() => {
        repo.purge(DELIVERY_LOG_DAYS).catch((err) => app.log.warn({ err }, 'webhook log retention'))
      }, PURGE_EVERY_MS)
      purge.unref()
      app.addHook('onClose', async function stopWebhookWorker() {
        clearInterval(timer)
        clearInterval(purge)
      })
    }
    app.addHook('onClose', async function drainWebhooks() {
      await webhooks.idle()
    })
  },
  { name: 'webhooks', dependencies: ['config', 'db', 'changes', 'mailer', 'user-repository'] },
)
