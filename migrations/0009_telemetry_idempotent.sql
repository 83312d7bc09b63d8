ALTER TABLE "telemetry_logs" ADD COLUMN "content_hash" text;--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" ADD COLUMN "content_hash" text;--> statement-breakpoint
CREATE UNIQUE INDEX "telemetry_logs_content_key" ON "telemetry_logs" USING btree ("content_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "telemetry_metric_points_content_key" ON "telemetry_metric_points" USING btree ("content_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "telemetry_spans_identity_key" ON "telemetry_spans" USING btree ("trace_id","span_id");