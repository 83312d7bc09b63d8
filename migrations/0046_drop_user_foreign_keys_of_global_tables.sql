ALTER TABLE "mfa_login_token_keys" DROP CONSTRAINT "mfa_login_token_keys_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "webauthn_challenges" DROP CONSTRAINT "webauthn_challenges_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "oauth_models" DROP CONSTRAINT "oauth_models_account_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "webhook_subscriptions" DROP CONSTRAINT "webhook_subscriptions_user_id_users_id_fk";
