-- Browser sign-in (SPEC §6.2): client fields for the authorization code flow, one-time
-- codes, the browser sessions behind the `tessera_session` cookie, and remembered consent.

ALTER TABLE clients ADD COLUMN name TEXT;
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;

-- A code is known only by its SHA-256. used_at is set by the first exchange, and
-- session_id names the session that exchange started, so a second use can end it.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    fresh BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    session_id TEXT
);
CREATE INDEX authorization_codes_user_id ON authorization_codes(user_id);

-- The cookie holds a random secret; the row is found by its SHA-256. Each browser session
-- owns a row of `sessions` (client `(browser)`), so every action that ends a user's
-- sessions ends the browser session with them. fresh_sign_in is set at sign-in and spent by
-- the first code issued afterwards (that code's tokens are `fresh`).
CREATE TABLE browser_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    fresh_sign_in BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_session_id ON browser_sessions(session_id);

-- Scopes a user allowed a third-party client (a JSON array).
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
