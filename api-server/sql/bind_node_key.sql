-- $1 role, $2 name, $3 key_sha256, $4 bound_by, $5 true for a renewal (the old key stays
-- accepted as the previous one) or false for a takeover (it does not). Either way the name is
-- held again (no longer released).
INSERT INTO node_identities (role, name, key_sha256, bound_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (role, name) DO UPDATE SET
  previous_key_sha256 = CASE WHEN $5 THEN node_identities.key_sha256 END,
  key_sha256 = EXCLUDED.key_sha256, bound_by = EXCLUDED.bound_by, released_at = NULL, updated_at = now()
