-- Hand-edited: the name of the primary key dropped (drizzle-kit leaves it out; PostgreSQL named it peer_group_invites_pkey).
CREATE TABLE "peer_group_invite_codes" (
	"code_hash" text PRIMARY KEY NOT NULL,
	"group_id" uuid NOT NULL,
	"invite_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "peer_group_invites" DROP CONSTRAINT "peer_group_invites_invitee_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "peer_group_invites" DROP CONSTRAINT "peer_group_invites_created_by_users_id_fk";
--> statement-breakpoint
ALTER TABLE "peer_group_members" DROP CONSTRAINT "peer_group_members_user_id_users_id_fk";
--> statement-breakpoint
ALTER TABLE "peer_groups" DROP CONSTRAINT "peer_groups_created_by_users_id_fk";
--> statement-breakpoint
DROP INDEX "peer_group_invites_code_key";--> statement-breakpoint
ALTER TABLE "peer_group_invites" DROP CONSTRAINT "peer_group_invites_pkey";--> statement-breakpoint
ALTER TABLE "peer_group_invites" ADD CONSTRAINT "peer_group_invites_pkey" PRIMARY KEY("group_id","id");