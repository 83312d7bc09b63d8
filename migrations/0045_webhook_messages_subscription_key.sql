-- Hand-ordered (drizzle-kit dropped the unique key that webhook_events_message_fk depends on first, and cannot name
-- the old primary keys): the foreign keys that depend on the old keys go first, then the keys, then the new keys
-- (subscription_id, id), then the foreign keys again on (subscription_id, message_id). Valid on tables with rows.
ALTER TABLE "webhook_attempts" DROP CONSTRAINT "webhook_attempts_message_id_webhook_messages_id_fk";--> statement-breakpoint
ALTER TABLE "webhook_events" DROP CONSTRAINT "webhook_events_message_fk";--> statement-breakpoint
ALTER TABLE "webhook_attempts" DROP CONSTRAINT "webhook_attempts_pkey";--> statement-breakpoint
ALTER TABLE "webhook_messages" DROP CONSTRAINT "webhook_messages_pkey";--> statement-breakpoint
ALTER TABLE "webhook_messages" DROP CONSTRAINT "webhook_messages_subscription_message_key";--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_subscription_id_id_pk" PRIMARY KEY("subscription_id","id");--> statement-breakpoint
ALTER TABLE "webhook_messages" ADD CONSTRAINT "webhook_messages_subscription_id_id_pk" PRIMARY KEY("subscription_id","id");--> statement-breakpoint
-- The worker writes an attempt with its message's subscription; an attempt whose copy differs (a hand-edited row)
-- would fail the new foreign key: it takes its message's.
UPDATE "webhook_attempts" a SET "subscription_id" = m."subscription_id"
  FROM "webhook_messages" m WHERE m."id" = a."message_id" AND a."subscription_id" <> m."subscription_id";--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_message_fk" FOREIGN KEY ("subscription_id","message_id") REFERENCES "public"."webhook_messages"("subscription_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_message_fk" FOREIGN KEY ("subscription_id","message_id") REFERENCES "public"."webhook_messages"("subscription_id","id") ON DELETE cascade ON UPDATE no action;
