CREATE TABLE "measurement_minutes" (
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"minute" timestamp (3) with time zone NOT NULL,
	"count" integer NOT NULL,
	"sum" double precision NOT NULL,
	"min" double precision NOT NULL,
	"max" double precision NOT NULL,
	CONSTRAINT "measurement_minutes_pkey" PRIMARY KEY("user_id","type","minute"),
	CONSTRAINT "measurement_minutes_count_positive" CHECK ("measurement_minutes"."count" > 0)
);
--> statement-breakpoint
CREATE TABLE "measurements" (
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"measured_at" timestamp (3) with time zone NOT NULL,
	"device_id" text DEFAULT '' NOT NULL,
	"value" double precision NOT NULL,
	CONSTRAINT "measurements_pkey" PRIMARY KEY("user_id","type","measured_at","device_id"),
	CONSTRAINT "measurements_type_known" CHECK ("measurements"."type" in ('heart_rate', 'hrv_rmssd', 'hrv_sdnn', 'skin_temperature', 'spo2', 'respiratory_rate', 'steps', 'distance', 'active_energy', 'stress', 'sleep_stage')),
	CONSTRAINT "measurements_device_id_length" CHECK (length("measurements"."device_id") <= 64)
);
--> statement-breakpoint
ALTER TABLE "measurement_minutes" ADD CONSTRAINT "measurement_minutes_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;