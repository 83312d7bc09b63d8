CREATE TABLE "measurement_blocks" (
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"hour" timestamp (3) with time zone NOT NULL,
	"device_id" text DEFAULT '' NOT NULL,
	"count" integer NOT NULL,
	"first_at" timestamp (3) with time zone NOT NULL,
	"last_at" timestamp (3) with time zone NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "measurement_blocks_pkey" PRIMARY KEY("user_id","type","hour","device_id"),
	CONSTRAINT "measurement_blocks_count_positive" CHECK ("measurement_blocks"."count" > 0)
);
--> statement-breakpoint
ALTER TABLE "measurement_blocks" ADD CONSTRAINT "measurement_blocks_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;