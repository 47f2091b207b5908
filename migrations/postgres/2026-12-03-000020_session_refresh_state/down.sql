DROP INDEX mfa_tokens_expires_at;
DROP INDEX revoked_access_tokens_expires_at;
DROP INDEX sessions_revoked_at;
DROP INDEX sessions_expires_at;
ALTER TABLE sessions DROP COLUMN refresh_successor_sealed;
ALTER TABLE sessions DROP COLUMN refresh_rotated_at;
ALTER TABLE sessions DROP COLUMN refresh_previous_hash;
ALTER TABLE sessions DROP COLUMN refresh_hash;
