import { sql } from 'drizzle-orm'
import {
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'
import { clientApps } from './auth.ts'
import { oauthClients } from './oauth.ts'

/**
 * A webhook endpoint. It belongs to an account (its own data's events), to a first-party client app (the
 * events of the users who use that app) or to a third-party OAuth client (the events of the users who
 * granted it, within the grant's scopes, and `authorization.revoked`); exactly one of the three. The signing secret must be readable to sign
 * (HMAC), so it is kept as is; it is shown once, at creation and rotation.
 */
export const webhookSubscriptions = pgTable(
  'webhook_subscriptions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /**
     * No foreign key to `users`: on Citus this table is distributed by its own id and cannot refer to a table
     * distributed by user (docs/scaling.md). Account deletion deletes the account's subscriptions (a deletion
     * step; their messages, attempts and events cascade from here, co-located by subscription).
     */
    userId: uuid('user_id'),
    clientId: uuid('client_id').references(() => clientApps.id, { onDelete: 'cascade' }),
    oauthClientId: text('oauth_client_id').references(() => oauthClients.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    eventTypes: text('event_types').array().notNull(),
    description: text('description'),
    secret: text('secret').notNull(),
    /** After a rotation the previous secret also signs (a second signature) until it expires. */
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true, precision: 3 }),
    status: text('status', { enum: ['active', 'disabled'] })
      .notNull()
      .default('active'),
    /** `receiver_gone` (a 410), `failing` (a message ran out of retries), `owner`, `admin`. */
    disabledReason: text('disabled_reason'),
    disabledAt: timestamp('disabled_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    index('webhook_subscriptions_user_idx').on(t.userId),
    index('webhook_subscriptions_client_idx').on(t.clientId),
    index('webhook_subscriptions_oauth_client_idx').on(t.oauthClientId),
    check('webhook_subscriptions_one_owner', sql`num_nonnulls(${t.userId}, ${t.clientId}, ${t.oauthClientId}) = 1`),
  ],
)

/**
 * The outbox: one row per event for one subscription, written in the transaction of the change. The
 * worker groups the rows of a subscription into a message (`message_id`) and sends that.
 * `payload` is the thin event (ids, user id, type, range, seq), never health data. Keyed by
 * (subscription_id, id), and its message referred to with subscription_id on both sides, so it is
 * distributed by subscription with its messages (docs/scaling.md).
 */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: uuid('id').notNull().defaultRandom(),
    subscriptionId: uuid('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull(),
    eventType: text('event_type').notNull(),
    payload: jsonb('payload').notNull(),
    /** Set when the worker puts the event into a message; purging the message (after 30 days) takes it along. */
    messageId: uuid('message_id'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.subscriptionId, t.id] }),
    foreignKey({
      name: 'webhook_events_message_fk',
      columns: [t.subscriptionId, t.messageId],
      foreignColumns: [webhookMessages.subscriptionId, webhookMessages.id],
    }).onDelete('cascade'),
    index('webhook_events_unbatched_idx').on(t.createdAt).where(sql`${t.messageId} is null`),
    index('webhook_events_user_idx').on(t.userId),
  ],
)

/**
 * A message: what one HTTP request carries (one event, or a batch), with its `webhook-id`, sent until a
 * 2xx (at-least-once: retries carry the same id and the same body) on the Standard Webhooks schedule.
 * Keyed by (subscription_id, id), and every statement on one message names both (a single-shard query on
 * Citus, where it is distributed by subscription: docs/scaling.md).
 */
export const webhookMessages = pgTable(
  'webhook_messages',
  {
    id: uuid('id').notNull().defaultRandom(),
    subscriptionId: uuid('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id, { onDelete: 'cascade' }),
    body: text('body').notNull(),
    eventCount: integer('event_count').notNull(),
    status: text('status', { enum: ['pending', 'succeeded', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    /**
     * Set while a worker sends the message (its lease; cleared when the attempt is settled): the claim counts a
     * subscription's leased messages, so WEBHOOK_MAX_IN_FLIGHT holds across every process.
     */
    leasedUntil: timestamp('leased_until', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [
    // Also what webhook_events and webhook_attempts refer to, subscription_id on both sides (co-located).
    primaryKey({ columns: [t.subscriptionId, t.id] }),
    index('webhook_messages_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('webhook_messages_subscription_idx').on(t.subscriptionId, t.createdAt),
    index('webhook_messages_leased_idx').on(t.subscriptionId).where(sql`${t.leasedUntil} is not null`),
  ],
)

/**
 * The delivery log: every attempt of every message, with its answer and latency. Keyed by (subscription_id, id),
 * its message referred to by (subscription_id, message_id): distributed by subscription with the messages.
 */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: uuid('id').notNull().defaultRandom(),
    messageId: uuid('message_id').notNull(),
    subscriptionId: uuid('subscription_id')
      .notNull()
      .references(() => webhookSubscriptions.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    /** The receiver's HTTP status; null when there was none (timeout, refused address, connection error). */
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    /** `timeout`, `refused_address`, `connection_failed`, `redirect`, `http_<status>`; null on success. */
    error: text('error'),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.subscriptionId, t.id] }),
    foreignKey({
      name: 'webhook_attempts_message_fk',
      columns: [t.subscriptionId, t.messageId],
      foreignColumns: [webhookMessages.subscriptionId, webhookMessages.id],
    }).onDelete('cascade'),
    index('webhook_attempts_subscription_idx').on(t.subscriptionId, t.at),
  ],
)
