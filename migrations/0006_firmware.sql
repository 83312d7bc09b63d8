CREATE TABLE "firmware_install_reports" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"release_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"device_id" text NOT NULL,
	"outcome" text NOT NULL,
	"reason" text,
	"from_version" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "firmware_releases" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"hardware_model" text NOT NULL,
	"version" text NOT NULL,
	"version_key" text COLLATE "C" NOT NULL,
	"channel" text NOT NULL,
	"status" text DEFAULT 'draft' NOT NULL,
	"release_notes" text DEFAULT '' NOT NULL,
	"min_version" text,
	"mandatory" boolean DEFAULT false NOT NULL,
	"rollout_percentage" integer DEFAULT 100 NOT NULL,
	"size_bytes" bigint NOT NULL,
	"sha256" text NOT NULL,
	"uploaded_by" uuid,
	"rollback_target_id" uuid,
	"published_at" timestamp (3) with time zone,
	"rollout_epoch_at" timestamp (3) with time zone,
	"halted_at" timestamp (3) with time zone,
	"halt_reason" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "firmware_releases_rollout_range" CHECK ("firmware_releases"."rollout_percentage" between 0 and 100),
	CONSTRAINT "firmware_releases_size_nonnegative" CHECK ("firmware_releases"."size_bytes" >= 0),
	CONSTRAINT "firmware_releases_sha256_hex" CHECK ("firmware_releases"."sha256" ~ '^[0-9a-f]{64}$'),
	CONSTRAINT "firmware_releases_not_own_rollback" CHECK ("firmware_releases"."rollback_target_id" is distinct from "firmware_releases"."id")
);
--> statement-breakpoint
ALTER TABLE "firmware_install_reports" ADD CONSTRAINT "firmware_install_reports_release_id_firmware_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."firmware_releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "firmware_install_reports" ADD CONSTRAINT "firmware_install_reports_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "firmware_releases" ADD CONSTRAINT "firmware_releases_uploaded_by_users_id_fk" FOREIGN KEY ("uploaded_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "firmware_releases" ADD CONSTRAINT "firmware_releases_rollback_target_id_firmware_releases_id_fk" FOREIGN KEY ("rollback_target_id") REFERENCES "public"."firmware_releases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "firmware_install_reports_device_key" ON "firmware_install_reports" USING btree ("release_id","user_id","device_id");--> statement-breakpoint
CREATE INDEX "firmware_install_reports_release_idx" ON "firmware_install_reports" USING btree ("release_id","updated_at");--> statement-breakpoint
CREATE INDEX "firmware_install_reports_user_idx" ON "firmware_install_reports" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "firmware_releases_model_version_key" ON "firmware_releases" USING btree ("hardware_model","version_key");--> statement-breakpoint
CREATE INDEX "firmware_releases_offer_idx" ON "firmware_releases" USING btree ("hardware_model","status","version_key");--> statement-breakpoint
CREATE INDEX "firmware_releases_created_idx" ON "firmware_releases" USING btree ("created_at","id");