-- The admin key from configuration, stored hashed. $1 sha256
INSERT INTO api_keys (id, key_sha256, principal, role)
VALUES ('bootstrap-admin', $1, 'admin/bootstrap', 'admin')
ON CONFLICT (id) DO UPDATE SET key_sha256 = EXCLUDED.key_sha256, revoked = false
