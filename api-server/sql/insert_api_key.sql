-- $1 key id, $2 sha256 of the key, $3 principal, $4 role, $5 expiry epoch seconds (0 = never)
INSERT INTO api_keys (id, key_sha256, principal, role, expires_at)
VALUES ($1, $2, $3, $4, CASE WHEN $5 = 0 THEN NULL ELSE to_timestamp($5) END)
