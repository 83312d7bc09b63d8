-- Backfill: every stored passkey's credential id names its account in passkey_credentials (the unique index
-- passkeys had until 0028 guarantees one account per credential id, so no conflict can arise).
INSERT INTO "passkey_credentials" ("credential_id", "user_id", "created_at")
SELECT "credential_id", "user_id", "created_at" FROM "passkeys"
ON CONFLICT ("credential_id") DO NOTHING;
