-- Failed logins for usernames that have no account, so that an unknown name locks exactly
-- like a real one (a real account counts in users.failed_logins). Keyed by an HMAC of the
-- lowercased name under a key derived from the master key: the name itself is never stored.
CREATE TABLE login_failures (
    key_hash TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX login_failures_updated_at ON login_failures(updated_at);
