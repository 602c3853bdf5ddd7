-- $1 key id
UPDATE api_keys SET revoked = true, revoked_at = now() WHERE id = $1 RETURNING id
