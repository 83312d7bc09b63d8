ALTER TABLE "webhook_events" DROP CONSTRAINT "webhook_events_message_id_webhook_messages_id_fk";--> statement-breakpoint
ALTER TABLE "webhook_events" DROP CONSTRAINT "webhook_events_pkey";--> statement-breakpoint
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_subscription_id_id_pk" PRIMARY KEY("subscription_id","id");--> statement-breakpoint
ALTER TABLE "webhook_messages" ADD CONSTRAINT "webhook_messages_subscription_message_key" UNIQUE("subscription_id","id");--> statement-breakpoint
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_message_fk" FOREIGN KEY ("subscription_id","message_id") REFERENCES "public"."webhook_messages"("subscription_id","id") ON DELETE cascade ON UPDATE no action;
