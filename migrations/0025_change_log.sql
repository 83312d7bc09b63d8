CREATE TABLE "change_cursors" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"pruned_seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "change_log" (
	"user_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"type" text NOT NULL,
	"action" text NOT NULL,
	"object_id" text,
	"range_type" text,
	"range_from" timestamp (3) with time zone,
	"range_to" timestamp (3) with time zone,
	"range_count" integer,
	"at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "change_log_user_id_seq_pk" PRIMARY KEY("user_id","seq"),
	CONSTRAINT "change_log_id_or_range" CHECK (("change_log"."object_id" is null) <> ("change_log"."range_from" is null))
);
--> statement-breakpoint
ALTER TABLE "change_cursors" ADD CONSTRAINT "change_cursors_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "change_log" ADD CONSTRAINT "change_log_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "change_log_at_idx" ON "change_log" USING btree ("at");