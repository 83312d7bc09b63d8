-- Backfill: every peer-group invite's code names its invite in peer_group_invite_codes (the unique index the
-- invites had on code_hash until peer_group_keys guarantees one invite per code), so a link e-mailed before the
-- upgrade still finds its invite. Expired invites get their row too: every path that ends an invite deletes the
-- row of its code, so each invite has exactly one.
INSERT INTO "peer_group_invite_codes" ("code_hash", "group_id", "invite_id", "created_at")
SELECT "code_hash", "group_id", "id", "created_at" FROM "peer_group_invites"
ON CONFLICT ("code_hash") DO NOTHING;
