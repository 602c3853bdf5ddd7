-- $1 sha256 of the presented key
SELECT principal, role FROM api_keys
WHERE key_sha256 = $1 AND NOT revoked AND (expires_at IS NULL OR expires_at > now())
