ALTER TABLE "insights" ADD COLUMN "sources" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "insights" ADD COLUMN "source_from" date;--> statement-breakpoint
ALTER TABLE "insights" ADD COLUMN "source_to" date;--> statement-breakpoint
ALTER TABLE "insights" ADD COLUMN "withdrawn_at" timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "insights_user_sources_idx" ON "insights" USING btree ("user_id","source_to") WHERE "insights"."withdrawn_at" is null;