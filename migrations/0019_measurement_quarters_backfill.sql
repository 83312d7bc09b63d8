-- The 15-minute rollup of every stored sample, as ingest keeps it (routes/measurement/repository.ts):
-- count/sum/min/max per UTC quarter-hour, the same per 5-minute window of it, and the minutes with samples.
INSERT INTO "measurement_quarters" ("user_id", "type", "quarter", "count", "sum", "min", "max",
    "w0_count", "w0_sum", "w0_min", "w0_max", "w1_count", "w1_sum", "w1_min", "w1_max",
    "w2_count", "w2_sum", "w2_min", "w2_max", "minute_mask")
SELECT "user_id", "type", "quarter", count(*)::int, sum("value"), min("value"), max("value"),
       (count(*) FILTER (WHERE mi / 5 = 0))::int, coalesce(sum("value") FILTER (WHERE mi / 5 = 0), 0),
       min("value") FILTER (WHERE mi / 5 = 0), max("value") FILTER (WHERE mi / 5 = 0),
       (count(*) FILTER (WHERE mi / 5 = 1))::int, coalesce(sum("value") FILTER (WHERE mi / 5 = 1), 0),
       min("value") FILTER (WHERE mi / 5 = 1), max("value") FILTER (WHERE mi / 5 = 1),
       (count(*) FILTER (WHERE mi / 5 = 2))::int, coalesce(sum("value") FILTER (WHERE mi / 5 = 2), 0),
       min("value") FILTER (WHERE mi / 5 = 2), max("value") FILTER (WHERE mi / 5 = 2),
       bit_or(1 << mi)
  FROM (
    SELECT "user_id", "type", "value", "quarter",
           floor(extract(epoch FROM "measured_at" - "quarter") / 60)::int AS mi
      FROM (SELECT *, date_bin('15 minutes', "measured_at", timestamptz '2000-01-01T00:00:00Z') AS "quarter"
              FROM "measurements") m
  ) s
 GROUP BY "user_id", "type", "quarter"
ON CONFLICT ("user_id", "type", "quarter") DO NOTHING;
