CREATE TABLE "share_invite_codes" (
	"code_hash" text PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"share_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "shares" DROP CONSTRAINT "shares_viewer_id_users_id_fk";
--> statement-breakpoint
DROP INDEX "shares_invite_code_key";--> statement-breakpoint
ALTER TABLE "shares" DROP CONSTRAINT "shares_pkey";--> statement-breakpoint
ALTER TABLE "shares" ADD CONSTRAINT "shares_pkey" PRIMARY KEY("owner_id","id");