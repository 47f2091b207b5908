DROP TABLE session_links;
ALTER TABLE authorization_codes DROP COLUMN browser_session_id;
