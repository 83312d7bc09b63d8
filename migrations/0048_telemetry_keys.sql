-- Hand-edited: the names of the primary keys dropped (drizzle-kit leaves them out; PostgreSQL names them <table>_pkey).
ALTER TABLE "telemetry_logs" DROP CONSTRAINT "telemetry_logs_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" DROP CONSTRAINT "telemetry_metric_points_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "telemetry_spans" DROP CONSTRAINT "telemetry_spans_user_id_users_id_fk";
--> statement-breakpoint
DROP INDEX "telemetry_logs_content_key";--> statement-breakpoint
DROP INDEX "telemetry_metric_points_content_key";--> statement-breakpoint
DROP INDEX "telemetry_spans_identity_key";--> statement-breakpoint
ALTER TABLE "telemetry_logs" DROP CONSTRAINT "telemetry_logs_pkey";--> statement-breakpoint
ALTER TABLE "telemetry_logs" ADD PRIMARY KEY ("content_hash");--> statement-breakpoint
ALTER TABLE "telemetry_logs" ALTER COLUMN "content_hash" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" DROP CONSTRAINT "telemetry_metric_points_pkey";--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" ADD PRIMARY KEY ("content_hash");--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" ALTER COLUMN "content_hash" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "telemetry_spans" DROP CONSTRAINT "telemetry_spans_pkey";--> statement-breakpoint
ALTER TABLE "telemetry_spans" ADD CONSTRAINT "telemetry_spans_pkey" PRIMARY KEY("trace_id","span_id");