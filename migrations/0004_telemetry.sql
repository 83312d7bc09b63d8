CREATE TABLE "telemetry_logs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"time" timestamp (3) with time zone NOT NULL,
	"severity_number" smallint NOT NULL,
	"severity_text" text,
	"body" text,
	"attributes" jsonb NOT NULL,
	"trace_id" text,
	"span_id" text,
	"service_name" text NOT NULL,
	"service_version" text,
	"scope_name" text,
	"user_id" uuid,
	"client_id" uuid,
	"received_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "telemetry_logs_severity_range" CHECK ("telemetry_logs"."severity_number" between 0 and 24),
	CONSTRAINT "telemetry_logs_trace_id_hex" CHECK ("telemetry_logs"."trace_id" is null or "telemetry_logs"."trace_id" ~ '^[0-9a-f]{32}$'),
	CONSTRAINT "telemetry_logs_span_id_hex" CHECK ("telemetry_logs"."span_id" is null or "telemetry_logs"."span_id" ~ '^[0-9a-f]{16}$')
);
--> statement-breakpoint
CREATE TABLE "telemetry_metric_points" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"unit" text,
	"type" text NOT NULL,
	"time" timestamp (3) with time zone NOT NULL,
	"start_time" timestamp (3) with time zone,
	"value" double precision,
	"count" bigint,
	"sum" double precision,
	"min" double precision,
	"max" double precision,
	"is_monotonic" boolean,
	"temporality" smallint,
	"distribution" jsonb,
	"attributes" jsonb NOT NULL,
	"service_name" text NOT NULL,
	"service_version" text,
	"scope_name" text,
	"user_id" uuid,
	"client_id" uuid,
	"received_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "telemetry_metric_points_count_positive" CHECK ("telemetry_metric_points"."count" is null or "telemetry_metric_points"."count" >= 0),
	CONSTRAINT "telemetry_metric_points_temporality_range" CHECK ("telemetry_metric_points"."temporality" is null or "telemetry_metric_points"."temporality" between 0 and 2)
);
--> statement-breakpoint
CREATE TABLE "telemetry_spans" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"trace_id" text NOT NULL,
	"span_id" text NOT NULL,
	"parent_span_id" text,
	"name" text NOT NULL,
	"kind" smallint NOT NULL,
	"start_at" timestamp (3) with time zone NOT NULL,
	"end_at" timestamp (3) with time zone NOT NULL,
	"duration_ns" bigint NOT NULL,
	"status_code" smallint NOT NULL,
	"status_message" text,
	"attributes" jsonb NOT NULL,
	"events" jsonb,
	"service_name" text NOT NULL,
	"service_version" text,
	"scope_name" text,
	"user_id" uuid,
	"client_id" uuid,
	"received_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "telemetry_spans_trace_id_hex" CHECK ("telemetry_spans"."trace_id" ~ '^[0-9a-f]{32}$'),
	CONSTRAINT "telemetry_spans_span_id_hex" CHECK ("telemetry_spans"."span_id" ~ '^[0-9a-f]{16}$'),
	CONSTRAINT "telemetry_spans_parent_id_hex" CHECK ("telemetry_spans"."parent_span_id" is null or "telemetry_spans"."parent_span_id" ~ '^[0-9a-f]{16}$'),
	CONSTRAINT "telemetry_spans_kind_range" CHECK ("telemetry_spans"."kind" between 0 and 5),
	CONSTRAINT "telemetry_spans_status_range" CHECK ("telemetry_spans"."status_code" between 0 and 2),
	CONSTRAINT "telemetry_spans_duration_positive" CHECK ("telemetry_spans"."duration_ns" >= 0)
);
--> statement-breakpoint
ALTER TABLE "telemetry_logs" ADD CONSTRAINT "telemetry_logs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry_logs" ADD CONSTRAINT "telemetry_logs_client_id_client_apps_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."client_apps"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" ADD CONSTRAINT "telemetry_metric_points_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry_metric_points" ADD CONSTRAINT "telemetry_metric_points_client_id_client_apps_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."client_apps"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry_spans" ADD CONSTRAINT "telemetry_spans_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry_spans" ADD CONSTRAINT "telemetry_spans_client_id_client_apps_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."client_apps"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "telemetry_logs_time_idx" ON "telemetry_logs" USING btree ("time","id");--> statement-breakpoint
CREATE INDEX "telemetry_logs_service_time_idx" ON "telemetry_logs" USING btree ("service_name","time","id");--> statement-breakpoint
CREATE INDEX "telemetry_logs_user_idx" ON "telemetry_logs" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "telemetry_logs_received_idx" ON "telemetry_logs" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "telemetry_metric_points_name_time_idx" ON "telemetry_metric_points" USING btree ("name","time");--> statement-breakpoint
CREATE INDEX "telemetry_metric_points_user_idx" ON "telemetry_metric_points" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "telemetry_metric_points_received_idx" ON "telemetry_metric_points" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "telemetry_spans_trace_idx" ON "telemetry_spans" USING btree ("trace_id","start_at","id");--> statement-breakpoint
CREATE INDEX "telemetry_spans_service_time_idx" ON "telemetry_spans" USING btree ("service_name","start_at","id");--> statement-breakpoint
CREATE INDEX "telemetry_spans_time_idx" ON "telemetry_spans" USING btree ("start_at","id");--> statement-breakpoint
CREATE INDEX "telemetry_spans_duration_idx" ON "telemetry_spans" USING btree ("duration_ns","id");--> statement-breakpoint
CREATE INDEX "telemetry_spans_user_idx" ON "telemetry_spans" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "telemetry_spans_received_idx" ON "telemetry_spans" USING btree ("received_at");