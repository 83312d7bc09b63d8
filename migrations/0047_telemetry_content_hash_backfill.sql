-- Log records and metric points stored before ingest was idempotent (migration telemetry_idempotent) have no
-- content hash. The next migration makes content_hash the primary key (Citus distributes these tables by it:
-- docs/scaling.md), so each such row gets one of its own: the SHA-256 of 'legacy', the kind and the row's id.
-- It is unique, and never equal to a content hash the server computes (those hash 'log'/'point' and the fields),
-- so an old row stays as it was: stored once, never matched by a re-sent record.
UPDATE "telemetry_logs"
   SET "content_hash" = encode(sha256(convert_to('legacy log' || chr(10) || "id"::text, 'UTF8')), 'hex')
 WHERE "content_hash" IS NULL;
--> statement-breakpoint
UPDATE "telemetry_metric_points"
   SET "content_hash" = encode(sha256(convert_to('legacy point' || chr(10) || "id"::text, 'UTF8')), 'hex')
 WHERE "content_hash" IS NULL;
