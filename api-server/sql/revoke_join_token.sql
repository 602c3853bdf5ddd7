-- $1 id. Revoking twice keeps the first time.
UPDATE join_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1::uuid RETURNING id
