ALTER TABLE "client_apps" ADD COLUMN "previous_secret_hash" text;--> statement-breakpoint
ALTER TABLE "client_apps" ADD COLUMN "previous_secret_expires_at" timestamp (3) with time zone;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "role" text DEFAULT 'user' NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "pending_email" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "pending_email_expires_at" timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "sessions_client_active_idx" ON "sessions" USING btree ("client_id") WHERE "sessions"."revoked_at" is null;