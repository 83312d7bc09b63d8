ALTER TABLE "insights" ALTER COLUMN "source_from" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "insights" ALTER COLUMN "source_to" SET NOT NULL;