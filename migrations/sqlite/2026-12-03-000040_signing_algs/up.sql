-- One key lifecycle per signing algorithm (SPEC §6.6). Existing keys are RS256.
-- RSA keys keep their public part in public_n/public_e; EC (P-256) keys keep theirs in
-- public_x/public_y and Ed25519 keys in public_x, with public_n/public_e left empty, so no
-- existing column changes (SQLite cannot relax NOT NULL without rebuilding the table).
ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE signing_keys ADD COLUMN public_x TEXT;
ALTER TABLE signing_keys ADD COLUMN public_y TEXT;
-- When a key stopped signing because its algorithm left TESSERA_SIGNING_ALGS: it stays
-- published until every token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN deactivated_at BIGINT;

-- The algorithm that signs a client's tokens; NULL means the default, RS256.
ALTER TABLE clients ADD COLUMN token_alg TEXT;
