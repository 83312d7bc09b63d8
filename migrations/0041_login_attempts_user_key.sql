CREATE TABLE "login_attempts_unknown" (
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"email_hash" text NOT NULL,
	"reason" text,
	"ip" text,
	"user_agent" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "login_attempts_unknown_email_hash_id_pk" PRIMARY KEY("email_hash","id")
);
--> statement-breakpoint
-- Hand-written: attempts without an account move to the new table, by the SHA-256 (hex) of the address as the
-- server computes it (routes/auth/history-repository.ts), before user_id becomes NOT NULL.
INSERT INTO "login_attempts_unknown" ("id", "email_hash", "reason", "ip", "user_agent", "created_at")
SELECT "id", encode(sha256(convert_to("email", 'UTF8')), 'hex'), "reason", "ip", "user_agent", "created_at"
  FROM "login_attempts" WHERE "user_id" IS NULL;--> statement-breakpoint
DELETE FROM "login_attempts" WHERE "user_id" IS NULL;--> statement-breakpoint
DROP INDEX "login_attempts_email_idx";--> statement-breakpoint
ALTER TABLE "login_attempts" DROP CONSTRAINT "login_attempts_pkey";--> statement-breakpoint
ALTER TABLE "login_attempts" ALTER COLUMN "user_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "login_attempts" ADD CONSTRAINT "login_attempts_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
CREATE INDEX "login_attempts_unknown_email_idx" ON "login_attempts_unknown" USING btree ("email_hash","created_at");--> statement-breakpoint
CREATE INDEX "login_attempts_email_idx" ON "login_attempts" USING btree ("user_id","email","created_at");
