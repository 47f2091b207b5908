-- Email verification and password reset (SPEC §6.4). A mailed token is known only by its
-- SHA-256; `purpose` is `verify` or `reset`; `email` is the address it was sent to (a
-- verification counts only while the account still has that address); `used_at` makes it
-- single use.
CREATE TABLE mail_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX mail_tokens_user ON mail_tokens(user_id, purpose, created_at);

-- The address a user proved, and when. `email_verified` holds while it equals the
-- account's current address.
CREATE TABLE email_verifications (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    verified_at BIGINT NOT NULL
);
