ALTER TABLE "password_check_failures" DROP CONSTRAINT "password_check_failures_pkey";--> statement-breakpoint
ALTER TABLE "password_check_failures" ADD CONSTRAINT "password_check_failures_user_id_id_pk" PRIMARY KEY("user_id","id");
