-- Backfill: every pending invite's code names its share in share_invite_codes (the unique index shares had
-- on invite_code_hash until share_keys guarantees one share per code; accepted shares have no code).
INSERT INTO "share_invite_codes" ("code_hash", "owner_id", "share_id", "created_at")
SELECT "invite_code_hash", "owner_id", "id", "created_at" FROM "shares" WHERE "invite_code_hash" IS NOT NULL
ON CONFLICT ("code_hash") DO NOTHING;
