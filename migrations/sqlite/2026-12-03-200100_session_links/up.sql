-- RP-initiated logout (SPEC §6.3) ends a browser session and every session started from
-- it. A code remembers the browser session that approved it; its exchange links the session
-- it starts to that browser session (both are `sessions` rows), for as long as both exist.
ALTER TABLE authorization_codes ADD COLUMN browser_session_id TEXT;

CREATE TABLE session_links (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    browser_session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE
);
CREATE INDEX session_links_browser_session_id ON session_links(browser_session_id);
