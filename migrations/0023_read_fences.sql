CREATE TABLE "read_fences" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"lsn" "pg_lsn" NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "read_fences" ADD CONSTRAINT "read_fences_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;