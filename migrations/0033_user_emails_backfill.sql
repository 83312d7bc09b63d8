-- Backfill: every account's address names it in user_emails (users_email_key kept addresses unique until
-- user_emails, and they are stored normalised, so no conflict can arise).
INSERT INTO "user_emails" ("email", "user_id", "created_at")
SELECT "email", "id", "created_at" FROM "users"
ON CONFLICT ("email") DO NOTHING;
