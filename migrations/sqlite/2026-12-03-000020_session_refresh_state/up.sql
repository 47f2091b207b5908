-- Refresh-token state lives on the session row, so storage grows with live sessions, not
-- with refreshes. A refresh is one conditional UPDATE of these columns (no row per token):
--   refresh_hash              SHA-256 of the current refresh token's jti (the only one
--                             that may be exchanged); NULL while the session's tokens are
--                             still in the legacy refresh_tokens table, or if it has none.
--   refresh_previous_hash     the token the current one replaced: within the reuse grace
--                             period it gets the same successor back, after it it is reuse.
--   refresh_rotated_at        when that replacement happened.
--   refresh_successor_sealed  the current token sealed under a key derived from the
--                             previous token's jti (only when a grace period applies).
-- None of them is indexed, so on PostgreSQL a refresh can be a HOT update.
ALTER TABLE sessions ADD COLUMN refresh_hash TEXT;
ALTER TABLE sessions ADD COLUMN refresh_previous_hash TEXT;
ALTER TABLE sessions ADD COLUMN refresh_rotated_at BIGINT;
ALTER TABLE sessions ADD COLUMN refresh_successor_sealed TEXT;

-- The hourly purge deletes ended sessions in bounded batches; these find them without a
-- scan of the whole table.
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens(expires_at);
CREATE INDEX mfa_tokens_expires_at ON mfa_tokens(expires_at);

-- refresh_tokens stays, read-only but for deletes, for tokens issued before this migration
-- (and by instances still running an older version): a session's first refresh moves it
-- to the columns above and deletes its rows. docs/operations.md says when it can go.
