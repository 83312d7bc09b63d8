-- Telemetry ingest becomes idempotent on the signal's identity (next migration: a unique index on
-- telemetry_spans (trace_id, span_id)). Spans stored twice by retried exports before that keep their
-- first copy; the index could not be built over the duplicates.
DELETE FROM "telemetry_spans" AS "later"
USING "telemetry_spans" AS "first"
WHERE "later"."trace_id" = "first"."trace_id"
  AND "later"."span_id" = "first"."span_id"
  AND ("later"."received_at", "later"."id") > ("first"."received_at", "first"."id");
