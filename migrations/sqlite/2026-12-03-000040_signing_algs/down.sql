ALTER TABLE clients DROP COLUMN token_alg;
DELETE FROM signing_keys WHERE alg <> 'RS256';
ALTER TABLE signing_keys DROP COLUMN deactivated_at;
ALTER TABLE signing_keys DROP COLUMN public_y;
ALTER TABLE signing_keys DROP COLUMN public_x;
ALTER TABLE signing_keys DROP COLUMN alg;
