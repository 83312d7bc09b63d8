CREATE TABLE "measurement_quarters" (
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"quarter" timestamp (3) with time zone NOT NULL,
	"count" integer NOT NULL,
	"sum" double precision NOT NULL,
	"min" double precision NOT NULL,
	"max" double precision NOT NULL,
	"w0_count" integer NOT NULL,
	"w0_sum" double precision NOT NULL,
	"w0_min" double precision,
	"w0_max" double precision,
	"w1_count" integer NOT NULL,
	"w1_sum" double precision NOT NULL,
	"w1_min" double precision,
	"w1_max" double precision,
	"w2_count" integer NOT NULL,
	"w2_sum" double precision NOT NULL,
	"w2_min" double precision,
	"w2_max" double precision,
	"minute_mask" integer NOT NULL,
	CONSTRAINT "measurement_quarters_pkey" PRIMARY KEY("user_id","type","quarter"),
	CONSTRAINT "measurement_quarters_count_positive" CHECK ("measurement_quarters"."count" > 0)
);
--> statement-breakpoint
ALTER TABLE "measurement_quarters" ADD CONSTRAINT "measurement_quarters_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;