-- The revocation feed (SPEC §6.7): revoked sessions, deny-listed access tokens and keys
-- retired early, each kept until no token it affects can still be valid. `seq` is the
-- cursor position, handed out from the one `revocation_head` row inside the transaction of
-- the change, so positions become visible in order and a reader never skips one.
CREATE TABLE revocations (
    seq BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX revocations_keep_until ON revocations (keep_until);

CREATE TABLE revocation_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO revocation_head (id, seq) VALUES (1, 0);
