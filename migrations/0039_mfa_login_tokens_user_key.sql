CREATE TABLE "mfa_login_token_keys" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
DROP INDEX "mfa_login_tokens_user_idx";--> statement-breakpoint
DROP INDEX "mfa_login_tokens_hash_key";--> statement-breakpoint
ALTER TABLE "mfa_login_tokens" DROP CONSTRAINT "mfa_login_tokens_pkey";--> statement-breakpoint
ALTER TABLE "mfa_login_tokens" ADD CONSTRAINT "mfa_login_tokens_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "mfa_login_token_keys" ADD CONSTRAINT "mfa_login_token_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mfa_login_token_keys_user_idx" ON "mfa_login_token_keys" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "mfa_login_token_keys_expires_idx" ON "mfa_login_token_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "mfa_login_tokens_hash_key" ON "mfa_login_tokens" USING btree ("user_id","token_hash");