CREATE TABLE "checkins" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"at" timestamp (3) with time zone NOT NULL,
	"mood" smallint NOT NULL,
	"energy" smallint,
	"stress" smallint,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"note" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "checkins_mood_range" CHECK ("checkins"."mood" between 1 and 5),
	CONSTRAINT "checkins_energy_range" CHECK ("checkins"."energy" between 1 and 5),
	CONSTRAINT "checkins_stress_range" CHECK ("checkins"."stress" between 1 and 5),
	CONSTRAINT "checkins_tags_bounded" CHECK (cardinality("checkins"."tags") <= 10),
	CONSTRAINT "checkins_note_length" CHECK (char_length("checkins"."note") <= 2000)
);
--> statement-breakpoint
CREATE TABLE "day_feedback" (
	"user_id" uuid NOT NULL,
	"day" date NOT NULL,
	"mood" smallint,
	"rating" smallint,
	"note" text,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "day_feedback_pk" PRIMARY KEY("user_id","day"),
	CONSTRAINT "day_feedback_mood_range" CHECK ("day_feedback"."mood" between 1 and 5),
	CONSTRAINT "day_feedback_rating_range" CHECK ("day_feedback"."rating" between 1 and 10),
	CONSTRAINT "day_feedback_tags_bounded" CHECK (cardinality("day_feedback"."tags") <= 10),
	CONSTRAINT "day_feedback_note_length" CHECK (char_length("day_feedback"."note") <= 2000),
	CONSTRAINT "day_feedback_not_empty" CHECK ("day_feedback"."mood" is not null or "day_feedback"."rating" is not null or "day_feedback"."note" is not null)
);
--> statement-breakpoint
CREATE TABLE "insight_feedback" (
	"insight_id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"helpful" boolean NOT NULL,
	"comment" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "insight_feedback_comment_length" CHECK (char_length("insight_feedback"."comment") <= 1000)
);
--> statement-breakpoint
CREATE TABLE "insight_reflections" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"insight_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "insight_reflections_text_length" CHECK (char_length("insight_reflections"."text") between 1 and 5000)
);
--> statement-breakpoint
CREATE TABLE "insights" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"period_start" date NOT NULL,
	"period_end" date NOT NULL,
	"title" text NOT NULL,
	"body" text NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "insights_period_order" CHECK ("insights"."period_end" >= "insights"."period_start")
);
--> statement-breakpoint
CREATE TABLE "journal_sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"family" text NOT NULL,
	"kind" text NOT NULL,
	"started_at" timestamp (3) with time zone NOT NULL,
	"ended_at" timestamp (3) with time zone,
	"notes" text,
	"perceived_exertion" smallint,
	"outcome_rating" smallint,
	"outcome_note" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "journal_sessions_family" CHECK ("journal_sessions"."family" in ('activity', 'intention')),
	CONSTRAINT "journal_sessions_kind" CHECK ("journal_sessions"."kind" ~ '^[a-z][a-z_]{0,31}$'),
	CONSTRAINT "journal_sessions_ends_after_start" CHECK ("journal_sessions"."ended_at" is null or "journal_sessions"."ended_at" >= "journal_sessions"."started_at"),
	CONSTRAINT "journal_sessions_notes_length" CHECK (char_length("journal_sessions"."notes") <= 2000),
	CONSTRAINT "journal_sessions_outcome_note_length" CHECK (char_length("journal_sessions"."outcome_note") <= 2000),
	CONSTRAINT "journal_sessions_exertion_range" CHECK ("journal_sessions"."perceived_exertion" between 0 and 10),
	CONSTRAINT "journal_sessions_outcome_range" CHECK ("journal_sessions"."outcome_rating" between 1 and 5),
	CONSTRAINT "journal_sessions_family_fields" CHECK (("journal_sessions"."family" = 'activity' or "journal_sessions"."perceived_exertion" is null) and ("journal_sessions"."family" = 'intention' or ("journal_sessions"."outcome_rating" is null and "journal_sessions"."outcome_note" is null)))
);
--> statement-breakpoint
ALTER TABLE "checkins" ADD CONSTRAINT "checkins_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "day_feedback" ADD CONSTRAINT "day_feedback_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insight_feedback" ADD CONSTRAINT "insight_feedback_insight_id_insights_id_fk" FOREIGN KEY ("insight_id") REFERENCES "public"."insights"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insight_feedback" ADD CONSTRAINT "insight_feedback_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insight_reflections" ADD CONSTRAINT "insight_reflections_insight_id_insights_id_fk" FOREIGN KEY ("insight_id") REFERENCES "public"."insights"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insight_reflections" ADD CONSTRAINT "insight_reflections_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "insights" ADD CONSTRAINT "insights_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "journal_sessions" ADD CONSTRAINT "journal_sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "checkins_user_at_idx" ON "checkins" USING btree ("user_id","at","id");--> statement-breakpoint
CREATE INDEX "insight_reflections_insight_idx" ON "insight_reflections" USING btree ("insight_id","created_at","id");--> statement-breakpoint
CREATE INDEX "insight_reflections_user_idx" ON "insight_reflections" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "insights_rule_period_key" ON "insights" USING btree ("user_id","kind","period_start","period_end");--> statement-breakpoint
CREATE INDEX "insights_user_created_idx" ON "insights" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE INDEX "journal_sessions_user_started_idx" ON "journal_sessions" USING btree ("user_id","family","started_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "journal_sessions_one_running" ON "journal_sessions" USING btree ("user_id","family") WHERE "journal_sessions"."ended_at" is null;