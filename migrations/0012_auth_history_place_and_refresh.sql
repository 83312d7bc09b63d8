ALTER TABLE "login_attempts" ADD COLUMN "type" text DEFAULT 'login' NOT NULL;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD COLUMN "country_code" text;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD COLUMN "region" text;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD COLUMN "city" text;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD COLUMN "latitude" double precision;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD COLUMN "longitude" double precision;