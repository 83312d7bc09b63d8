ALTER TABLE "insight_feedback" DROP CONSTRAINT "insight_feedback_insight_id_insights_id_fk";
--> statement-breakpoint
ALTER TABLE "insight_reflections" DROP CONSTRAINT "insight_reflections_insight_id_insights_id_fk";
--> statement-breakpoint
DROP INDEX "user_settings_pk";--> statement-breakpoint
DROP INDEX "firmware_install_reports_device_key";--> statement-breakpoint
ALTER TABLE "firmware_install_reports" DROP CONSTRAINT "firmware_install_reports_pkey";--> statement-breakpoint
ALTER TABLE "checkins" DROP CONSTRAINT "checkins_pkey";--> statement-breakpoint
ALTER TABLE "insight_feedback" DROP CONSTRAINT "insight_feedback_pkey";--> statement-breakpoint
ALTER TABLE "insight_reflections" DROP CONSTRAINT "insight_reflections_pkey";--> statement-breakpoint
ALTER TABLE "insights" DROP CONSTRAINT "insights_pkey";--> statement-breakpoint
ALTER TABLE "journal_sessions" DROP CONSTRAINT "journal_sessions_pkey";--> statement-breakpoint
ALTER TABLE "mfa_recovery_codes" DROP CONSTRAINT "mfa_recovery_codes_pkey";--> statement-breakpoint
ALTER TABLE "firmware_install_reports" ADD CONSTRAINT "firmware_install_reports_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "checkins" ADD CONSTRAINT "checkins_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "insight_feedback" ADD CONSTRAINT "insight_feedback_user_id_insight_id_pk" PRIMARY KEY("user_id","insight_id");--> statement-breakpoint
ALTER TABLE "insight_reflections" ADD CONSTRAINT "insight_reflections_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "insights" ADD CONSTRAINT "insights_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "journal_sessions" ADD CONSTRAINT "journal_sessions_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "user_settings" ADD CONSTRAINT "user_settings_pkey" PRIMARY KEY("user_id","key");--> statement-breakpoint
ALTER TABLE "mfa_recovery_codes" ADD CONSTRAINT "mfa_recovery_codes_user_id_id_pk" PRIMARY KEY("user_id","id");--> statement-breakpoint
ALTER TABLE "insight_feedback" ADD CONSTRAINT "insight_feedback_insight_fk" FOREIGN KEY ("user_id","insight_id") REFERENCES "public"."insights"("user_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insight_reflections" ADD CONSTRAINT "insight_reflections_insight_fk" FOREIGN KEY ("user_id","insight_id") REFERENCES "public"."insights"("user_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "firmware_install_reports_device_key" ON "firmware_install_reports" USING btree ("user_id","release_id","device_id");