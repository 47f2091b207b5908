-- Two-factor login. The TOTP secret is sealed under the master key (bound to the user id);
-- last_step is the last accepted RFC 6238 time step, so a code is accepted once.
CREATE TABLE mfa_totp (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    last_step BIGINT,
    created_at BIGINT NOT NULL,
    enabled_at BIGINT
);

-- One-time recovery codes, by SHA-256 (they are high-entropy random); a used code is deleted.
CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Half-finished logins: the password was right, the second factor is awaited. Known only by
-- the SHA-256 of the mfa_token handed to the client; deleted when used.
CREATE TABLE mfa_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX mfa_tokens_user_id ON mfa_tokens(user_id);
