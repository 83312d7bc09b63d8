CREATE TABLE "user_emails" (
	"email" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_emails_email_normalised" CHECK ("user_emails"."email" = lower(btrim("user_emails"."email")))
);
--> statement-breakpoint
DROP INDEX "users_email_key";