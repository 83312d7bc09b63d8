-- Logins waiting for their second factor while the server is upgraded keep working: their tokens (by hash,
-- unique across users until now) get their lookup rows. Expired ones too; the sweep removes both sides.
INSERT INTO "mfa_login_token_keys" ("token_hash", "user_id", "expires_at")
SELECT "token_hash", "user_id", "expires_at" FROM "mfa_login_tokens"
ON CONFLICT ("token_hash") DO NOTHING;
