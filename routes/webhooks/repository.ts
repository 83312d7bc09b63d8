import { randomBytes } from 'node:crypto'
import { type SQL, and, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm'
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts'
import { webhookAttempts, webhookEvents, webhookMessages, webhookSubscriptions } from '../../db/schema/index.ts'
import { CHANGE_TYPE_SCOPES } from '../../plugins/oauth-scopes.ts'

export type SubscriptionRow = typeof webhookSubscriptions.$inferSelect
export type MessageRow = typeof webhookMessages.$inferSelect
export type AttemptRow = typeof webhookAttempts.$inferSelect

/** Who a subscription belongs to: an account, a first-party client app, or a third-party OAuth client (admin API, CLI). */
export type Owner = { userId: string } | { clientId: string } | { oauthClientId: string }

/** A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24 to 64). */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/** The `webhook-id` of a message: stable across its retries. */
export const webhookId = (messageId: string) => `msg_${messageId.replace(/-/g, '')}`

const ownerIs = (owner: Owner) =>
  'userId' in owner
    ? eq(webhookSubscriptions.userId, owner.userId)
    : 'clientId' in owner
      ? eq(webhookSubscriptions.clientId, owner.clientId)
      : eq(webhookSubscriptions.oauthClientId, owner.oauthClientId)

/** One message by its key: (subscription_id, id). */
const messageIs = (subscriptionId: string, messageId: string) =>
  and(eq(webhookMessages.subscriptionId, subscriptionId), eq(webhookMessages.id, messageId))

/** A third-party app's grant that ended (the user removed it, refresh-token reuse, account deletion, client revoked). */
export interface EndedGrant {
  userId: string
  clientId: string
  grantId: string
}

/**
 * The OAuth clients whose subscriptions hear about `r`'s change (`r`: a change_log row): those holding a live
 * grant of the change's user with the scope that reads the change's type (plugins/oauth-scopes.ts).
 */
function grantedClients(r: string): SQL {
  const cases = Object.entries(CHANGE_TYPE_SCOPES)
    .filter(([, scope]) => scope !== null)
    .map(([type, scope]) => sql`when ${type}::text then ${scope}::text`)
  const scope = sql`(case ${sql.raw(r)}.type ${sql.join(cases, sql` `)} end)`
  return sql`(select g.client_id from oauth_models g
               where g.kind = 'Grant' and g.account_id = ${sql.raw(r)}.user_id
                 and (g.expires_at is null or g.expires_at > now())
                 and ${scope} = any(string_to_array(g.payload #>> '{openid,scope}', ' '))
                 and not coalesce(${scope} = any(string_to_array(g.payload #>> '{rejected,openid,scope}', ' ')), false))`
}

/** An event as the outbox keeps it: what the receiver gets, never health data. */
export interface OutboxEvent {
  userId: string
  eventType: string
  payload: { type: string; timestamp: string; data: Record<string, unknown> }
}

export function createWebhookRepository(db: Db) {
  return {
    async create(
      owner: Owner,
      values: { url: string; eventTypes: string[]; description: string | null },
    ): Promise<SubscriptionRow> {
      const [row] = await db
        .insert(webhookSubscriptions)
        .values({ ...owner, ...values, secret: newSecret() })
        .returning()
      return row
    },

    async list(owner: Owner, limit: number, after?: { at: Date; id: string }) {
      return db
        .select()
        .from(webhookSubscriptions)
        .where(
          and(
            ownerIs(owner),
            after
              ? or(
                  lt(webhookSubscriptions.createdAt, after.at),
                  and(eq(webhookSubscriptions.createdAt, after.at), lt(webhookSubscriptions.id, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(desc(webhookSubscriptions.createdAt), desc(webhookSubscriptions.id))
        .limit(limit)
    },

    async get(owner: Owner, id: string): Promise<SubscriptionRow | null> {
      const [row] = await db
        .select()
        .from(webhookSubscriptions)
        .where(and(eq(webhookSubscriptions.id, id), ownerIs(owner)))
      return row ?? null
    },

    /** Any subscription by id (the admin's view). */
    async byId(id: string): Promise<SubscriptionRow | null> {
      const [row] = await db.select().from(webhookSubscriptions).where(eq(webhookSubscriptions.id, id))
      return row ?? null
    },

    async update(
      id: string,
      changes: { url?: string; eventTypes?: string[]; description?: string | null; status?: 'active' | 'disabled' },
      disabledReason?: string,
    ): Promise<SubscriptionRow | null> {
      const set: Partial<typeof webhookSubscriptions.$inferInsert> = { updatedAt: new Date() }
      if (changes.url !== undefined) set.url = changes.url
      if (changes.eventTypes !== undefined) set.eventTypes = changes.eventTypes
      if (changes.description !== undefined) set.description = changes.description
      if (changes.status === 'active') Object.assign(set, { status: 'active', disabledReason: null, disabledAt: null })
      if (changes.status === 'disabled') {
        Object.assign(set, { status: 'disabled', disabledReason: disabledReason ?? 'owner', disabledAt: new Date() })
      }
      const [row] = await db.update(webhookSubscriptions).set(set).where(eq(webhookSubscriptions.id, id)).returning()
      return row ?? null
    },

    /** A new secret; the previous one still signs (a second signature) for `overlapS` seconds. */
    async rotate(id: string, overlapS: number): Promise<SubscriptionRow | null> {
      const [row] = await db
        .update(webhookSubscriptions)
        .set({
          previousSecret: sql`${webhookSubscriptions.secret}`,
          previousSecretExpiresAt: new Date(Date.now() + overlapS * 1000),
          secret: newSecret(),
          updatedAt: new Date(),
        })
        .where(eq(webhookSubscriptions.id, id))
        .returning()
      return row ?? null
    },

    /**
     * Account deletion: the account's own subscriptions, with their messages, attempts and events (they cascade
     * from the subscription, co-located with it). `webhook_subscriptions` has no foreign key to `users` (Citus:
     * docs/scaling.md), so this step is what removes them; on Citus a multi-shard delete by user_id.
     */
    async deleteOwnedBy(userId: string, tx: DbOrTx): Promise<number> {
      const rows = await tx
        .delete(webhookSubscriptions)
        .where(eq(webhookSubscriptions.userId, userId))
        .returning({ id: webhookSubscriptions.id })
      return rows.length
    },

    async remove(id: string): Promise<boolean> {
      const rows = await db
        .delete(webhookSubscriptions)
        .where(eq(webhookSubscriptions.id, id))
        .returning({ id: webhookSubscriptions.id })
      return rows.length > 0
    },

    /**
     * Writes the events of one user's changes for every active subscription that wants them, in the
     * transaction of the change: the user's own subscriptions, and those of the client apps the user has a
     * live session with (a session through a first-party app is the user's consent to it). One statement, whatever the number of subscriptions (none: an index probe on each side).
     * `everSignedIn`: every app the user ever had a session with, ended ones too (`user.deleted`: an app that
     * held the user's data hears that it is to be erased, though the deletion has just ended its sessions).
     * OAuth clients: those the user granted access (whatever the scopes: the account is what is gone).
     */
    async enqueue(tx: DbOrTx, userId: string, events: OutboxEvent[], everSignedIn = false): Promise<void> {
      if (events.length === 0) return
      const values = events.map((e) => sql`(${e.eventType}::text, ${JSON.stringify(e.payload)}::jsonb)`)
      await tx.execute(sql`
        insert into webhook_events (subscription_id, user_id, event_type, payload)
        select s.id, ${userId}::uuid, e.event_type, e.payload
          from webhook_subscriptions s
          join (values ${sql.join(values, sql`, `)}) as e(event_type, payload) on e.event_type = any(s.event_types)
         where s.status = 'active'
           and (s.user_id = ${userId}::uuid
                or s.client_id in (select client_id from sessions
                                    where user_id = ${userId}::uuid
                                      ${everSignedIn ? sql`` : sql`and revoked_at is null and expires_at > now()`})
                or s.oauth_client_id in (select client_id from oauth_models
                                          where kind = 'Grant' and account_id = ${userId}::uuid))`)
    },

    /**
     * The same, as a statement of the change log's own recording statement (ChangeStatement): the events
     * are built in SQL from the inserted change_log rows (`rows`), so the outbox costs no round trip.
     */
    enqueueChanges(rows: SQL): SQL {
      const iso = (c: string) => sql.raw(`to_char(${c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)
      return sql`
        insert into webhook_events (subscription_id, user_id, event_type, payload)
        select s.id, r.user_id, r.type || '.' || r.action,
               jsonb_build_object(
                 'type', r.type || '.' || r.action,
                 'timestamp', ${iso('r.at')},
                 'data', jsonb_build_object('user_id', r.user_id, 'seq', r.seq)
                   || case when r.object_id is null then '{}'::jsonb else jsonb_build_object('id', r.object_id) end
                   || case when r.range_from is null then '{}'::jsonb else jsonb_build_object('range', jsonb_build_object(
                        'type', r.range_type, 'from', ${iso('r.range_from')}, 'to', ${iso('r.range_to')},
                        'count', r.range_count)) end)
          from ${rows} r
          join webhook_subscriptions s on (r.type || '.' || r.action) = any(s.event_types)
         where s.status = 'active'
           and (s.user_id = r.user_id
                or s.client_id in (select client_id from sessions
                                    where user_id = r.user_id and revoked_at is null and expires_at > now())
                or s.oauth_client_id in ${grantedClients('r')})
         order by r.seq`
    },

    /**
     * `authorization.revoked` for grants that ended, in the transaction that ends them: to the subscriptions
     * of the grant's OAuth client and to the user's own that asked for it. Thin: ids and the time.
     */
    async enqueueAuthorizationRevoked(tx: DbOrTx, grants: EndedGrant[]): Promise<void> {
      if (grants.length === 0) return
      const values = grants.map((g) => sql`(${g.userId}::uuid, ${g.clientId}::text, ${g.grantId}::text)`)
      const type = 'authorization.revoked'
      await tx.execute(sql`
        insert into webhook_events (subscription_id, user_id, event_type, payload)
        select s.id, g.user_id, ${type}::text,
               jsonb_build_object('type', ${type}::text, 'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                 'data', jsonb_build_object('user_id', g.user_id, 'client_id', g.client_id, 'grant_id', g.grant_id))
          from (values ${sql.join(values, sql`, `)}) as g(user_id, client_id, grant_id)
          join webhook_subscriptions s on ${type}::text = any(s.event_types)
         where s.status = 'active' and (s.oauth_client_id = g.client_id or s.user_id = g.user_id)`)
    },

    /** A message made by hand (the test event), outside the change log. */
    async enqueueMessage(subscriptionId: string, body: string): Promise<MessageRow> {
      const [row] = await db.insert(webhookMessages).values({ subscriptionId, body, eventCount: 1 }).returning()
      return row
    },

    /**
     * Groups events not yet in a message into messages, at most `perMessage` events each, per subscription,
     * oldest first. The rows are claimed with SKIP LOCKED, so processes batching at once take different ones.
     */
    async batch(limit: number, perMessage: number, now: () => Date): Promise<number> {
      return db.transaction(async (tx) => {
        const rows = await tx
          .select({
            id: webhookEvents.id,
            subscriptionId: webhookEvents.subscriptionId,
            payload: webhookEvents.payload,
          })
          .from(webhookEvents)
          .where(isNull(webhookEvents.messageId))
          // One transaction's events share created_at: within it, a user's in seq order.
          .orderBy(
            webhookEvents.createdAt,
            webhookEvents.userId,
            sql`(${webhookEvents.payload} #>> '{data,seq}')::bigint nulls first`,
            webhookEvents.id,
          )
          .limit(limit)
          .for('update', { skipLocked: true })
        const bySubscription = new Map<string, typeof rows>()
        for (const r of rows) {
          const list = bySubscription.get(r.subscriptionId)
          if (list) list.push(r)
          else bySubscription.set(r.subscriptionId, [r])
        }
        let made = 0
        for (const [subscriptionId, list] of bySubscription) {
          for (let i = 0; i < list.length; i += perMessage) {
            const chunk = list.slice(i, i + perMessage)
            const body =
              chunk.length === 1
                ? JSON.stringify(chunk[0].payload)
                : JSON.stringify({
                    type: 'batch',
                    timestamp: now().toISOString(),
                    data: { events: chunk.map((c) => c.payload) },
                  })
            const [message] = await tx
              .insert(webhookMessages)
              .values({ subscriptionId, body, eventCount: chunk.length })
              .returning({ id: webhookMessages.id })
            await tx
              .update(webhookEvents)
              .set({ messageId: message.id })
              .where(
                and(
                  eq(webhookEvents.subscriptionId, subscriptionId),
                  inArray(
                    webhookEvents.id,
                    chunk.map((c) => c.id),
                  ),
                ),
              )
            made++
          }
        }
        return made
      })
    },

    /**
     * Claims due messages of active subscriptions: SKIP LOCKED so processes never take the same one, and a
     * lease (`next_attempt_at` and `leased_until` moved past the attempt's timeout) so a crash mid-send makes
     * it due again. At most `maxInFlight` messages of one subscription are leased at once, in all processes:
     * the claim also locks the subscription rows (FOR NO KEY UPDATE, which the outbox's foreign-key checks do
     * not wait for), so two claims of one subscription take turns, and each counts the leases the other
     * committed; a claim meeting a subscription another is claiming skips its messages this round.
     */
    async claim(
      limit: number,
      leaseMs: number,
      maxInFlight: number,
    ): Promise<Array<{ message: MessageRow; subscription: SubscriptionRow }>> {
      return db.transaction(async (tx) => {
        const candidates = await tx
          .select({ message: webhookMessages, subscription: webhookSubscriptions })
          .from(webhookMessages)
          .innerJoin(webhookSubscriptions, eq(webhookSubscriptions.id, webhookMessages.subscriptionId))
          .where(
            and(
              eq(webhookMessages.status, 'pending'),
              sql`${webhookMessages.nextAttemptAt} <= now()`,
              eq(webhookSubscriptions.status, 'active'),
            ),
          )
          .orderBy(webhookMessages.nextAttemptAt)
          .limit(limit)
          .for('no key update', { of: [webhookMessages, webhookSubscriptions], skipLocked: true })
        if (candidates.length === 0) return []
        const subscriptionIds = [...new Set(candidates.map((c) => c.subscription.id))]
        const leased = await tx
          .select({ subscriptionId: webhookMessages.subscriptionId, n: sql<number>`count(*)::int` })
          .from(webhookMessages)
          .where(
            and(
              inArray(webhookMessages.subscriptionId, subscriptionIds),
              eq(webhookMessages.status, 'pending'),
              sql`${webhookMessages.leasedUntil} > now()`,
            ),
          )
          .groupBy(webhookMessages.subscriptionId)
        const inFlight = new Map(leased.map((r) => [r.subscriptionId, Number(r.n)]))
        const taken = candidates.filter((c) => {
          const n = inFlight.get(c.subscription.id) ?? 0
          if (n >= maxInFlight) return false
          inFlight.set(c.subscription.id, n + 1)
          return true
        })
        if (taken.length > 0) {
          // By key, (subscription_id, id): the two lists make it an index lookup of the primary key (and let
          // Citus prune to those subscriptions' shards), the pairs keep it exact.
          const lease = sql`now() + make_interval(secs => ${leaseMs / 1000})`
          const keys = taken.map((c) => sql`(${c.subscription.id}::uuid, ${c.message.id}::uuid)`)
          await tx
            .update(webhookMessages)
            .set({ nextAttemptAt: lease, leasedUntil: lease, attempts: sql`${webhookMessages.attempts} + 1` })
            .where(
              and(
                inArray(webhookMessages.subscriptionId, [...new Set(taken.map((c) => c.subscription.id))]),
                inArray(
                  webhookMessages.id,
                  taken.map((c) => c.message.id),
                ),
                sql`(${webhookMessages.subscriptionId}, ${webhookMessages.id}) in (${sql.join(keys, sql`, `)})`,
              ),
            )
        }
        return taken.map((c) => ({ ...c, message: { ...c.message, attempts: c.message.attempts + 1 } }))
      })
    },

    async logAttempt(values: typeof webhookAttempts.$inferInsert): Promise<void> {
      await db.insert(webhookAttempts).values(values)
    },

    // A message is settled by (subscription_id, id): its key, one shard on Citus.

    async succeeded(subscriptionId: string, messageId: string): Promise<void> {
      await db
        .update(webhookMessages)
        .set({ status: 'succeeded', deliveredAt: new Date(), leasedUntil: null })
        .where(messageIs(subscriptionId, messageId))
    },

    async retryAt(subscriptionId: string, messageId: string, delayMs: number): Promise<void> {
      await db
        .update(webhookMessages)
        .set({ nextAttemptAt: sql`now() + make_interval(secs => ${delayMs / 1000})`, leasedUntil: null })
        .where(messageIs(subscriptionId, messageId))
    },

    async failed(subscriptionId: string, messageId: string): Promise<void> {
      await db
        .update(webhookMessages)
        .set({ status: 'failed', leasedUntil: null })
        .where(messageIs(subscriptionId, messageId))
    },

    /** Disables an active subscription; answers it when this call disabled it (so its owner is told once). */
    async disable(id: string, reason: string): Promise<SubscriptionRow | null> {
      const [row] = await db
        .update(webhookSubscriptions)
        .set({ status: 'disabled', disabledReason: reason, disabledAt: new Date(), updatedAt: new Date() })
        .where(and(eq(webhookSubscriptions.id, id), eq(webhookSubscriptions.status, 'active')))
        .returning()
      return row ?? null
    },

    async messages(subscriptionId: string, limit: number, after?: { at: Date; id: string }) {
      return db
        .select()
        .from(webhookMessages)
        .where(
          and(
            eq(webhookMessages.subscriptionId, subscriptionId),
            after
              ? or(
                  lt(webhookMessages.createdAt, after.at),
                  and(eq(webhookMessages.createdAt, after.at), lt(webhookMessages.id, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(desc(webhookMessages.createdAt), desc(webhookMessages.id))
        .limit(limit)
    },

    async message(subscriptionId: string, messageId: string): Promise<MessageRow | null> {
      const [row] = await db.select().from(webhookMessages).where(messageIs(subscriptionId, messageId))
      return row ?? null
    },

    async attempts(subscriptionId: string, limit: number, after?: { at: Date; id: string }) {
      return db
        .select()
        .from(webhookAttempts)
        .where(
          and(
            eq(webhookAttempts.subscriptionId, subscriptionId),
            after
              ? or(
                  lt(webhookAttempts.at, after.at),
                  and(eq(webhookAttempts.at, after.at), lt(webhookAttempts.id, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(desc(webhookAttempts.at), desc(webhookAttempts.id))
        .limit(limit)
    },

    /** Manual redelivery: the message (same id, same body) is due again now, whatever its state. */
    async redeliver(subscriptionId: string, messageId: string): Promise<MessageRow | null> {
      const [row] = await db
        .update(webhookMessages)
        .set({ status: 'pending', nextAttemptAt: sql`now()` })
        .where(messageIs(subscriptionId, messageId))
        .returning()
      return row ?? null
    },

    /** Deletes delivered and failed messages (with their attempts) older than `days`. */
    async purge(days: number): Promise<number> {
      const rows = await db
        .delete(webhookMessages)
        .where(
          and(
            inArray(webhookMessages.status, ['succeeded', 'failed']),
            sql`${webhookMessages.createdAt} < now() - make_interval(days => ${days})`,
          ),
        )
        .returning({ id: webhookMessages.id })
      return rows.length
    },
  }
}

export type WebhookRepository = ReturnType<typeof createWebhookRepository>
