-- measurements: monthly range partitions on measured_at (routes/measurement/partitions.ts creates later months).
ALTER TABLE "measurements" RENAME TO "measurements_unpartitioned";--> statement-breakpoint
ALTER INDEX "measurements_pkey" RENAME TO "measurements_unpartitioned_pkey";--> statement-breakpoint
CREATE TABLE "measurements" (LIKE "measurements_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("measured_at");--> statement-breakpoint
-- Device ids in code point order ("C"): the key's order is then the one the server merges blocks and rows in,
-- whatever the database's default collation.
ALTER TABLE "measurements" ALTER COLUMN "device_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_pkey" PRIMARY KEY ("user_id", "type", "measured_at", "device_id");--> statement-breakpoint
ALTER TABLE "measurements" ADD CONSTRAINT "measurements_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
DO $$
DECLARE m date;
BEGIN
  FOR m IN
    SELECT DISTINCT date_trunc('month', "measured_at" AT TIME ZONE 'UTC')::date FROM "measurements_unpartitioned"
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date FROM generate_series(0, 2) k
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
      'measurements_p' || to_char(m, 'YYYY_MM'), 'measurements',
      to_char(m, 'YYYY-MM-DD') || 'T00:00:00Z', to_char(m + interval '1 month', 'YYYY-MM-DD') || 'T00:00:00Z');
  END LOOP;
END $$;--> statement-breakpoint
INSERT INTO "measurements" SELECT * FROM "measurements_unpartitioned";--> statement-breakpoint
DROP TABLE "measurements_unpartitioned";
--> statement-breakpoint
-- measurement_blocks: monthly range partitions on hour (routes/measurement/partitions.ts creates later months).
ALTER TABLE "measurement_blocks" RENAME TO "measurement_blocks_unpartitioned";--> statement-breakpoint
ALTER INDEX "measurement_blocks_pkey" RENAME TO "measurement_blocks_unpartitioned_pkey";--> statement-breakpoint
CREATE TABLE "measurement_blocks" (LIKE "measurement_blocks_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("hour");--> statement-breakpoint
-- Device ids in code point order ("C"): the key's order is then the one the server merges blocks and rows in,
-- whatever the database's default collation.
ALTER TABLE "measurement_blocks" ALTER COLUMN "device_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "measurement_blocks" ADD CONSTRAINT "measurement_blocks_pkey" PRIMARY KEY ("user_id", "type", "hour", "device_id");--> statement-breakpoint
ALTER TABLE "measurement_blocks" ADD CONSTRAINT "measurement_blocks_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
DO $$
DECLARE m date;
BEGIN
  FOR m IN
    SELECT DISTINCT date_trunc('month', "hour" AT TIME ZONE 'UTC')::date FROM "measurement_blocks_unpartitioned"
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date FROM generate_series(0, 2) k
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
      'measurement_blocks_p' || to_char(m, 'YYYY_MM'), 'measurement_blocks',
      to_char(m, 'YYYY-MM-DD') || 'T00:00:00Z', to_char(m + interval '1 month', 'YYYY-MM-DD') || 'T00:00:00Z');
  END LOOP;
END $$;--> statement-breakpoint
INSERT INTO "measurement_blocks" SELECT * FROM "measurement_blocks_unpartitioned";--> statement-breakpoint
DROP TABLE "measurement_blocks_unpartitioned";
