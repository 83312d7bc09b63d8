ALTER TABLE "mfa_totp_factors" DROP CONSTRAINT "mfa_totp_factors_pkey";--> statement-breakpoint
ALTER TABLE "mfa_totp_factors" ADD CONSTRAINT "mfa_totp_factors_user_id_id_pk" PRIMARY KEY("user_id","id");
