-- $1 role, $2 name, $3 key_sha256, $4 bound_by: a join token claims a name its node handed
-- back; the old key no longer renews. Returns nothing if it is held again (its node came back,
-- or another claimed it first).
UPDATE node_identities SET key_sha256 = $3, previous_key_sha256 = NULL, bound_by = $4, released_at = NULL,
  updated_at = now()
WHERE role = $1 AND name = $2 AND released_at IS NOT NULL
RETURNING name
