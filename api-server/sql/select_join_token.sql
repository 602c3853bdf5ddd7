-- The join token with this secret, for authenticating its holder: $1 secret_sha256.
-- Returns id, role, node_name ('' for any), expired, used up, revoked, max_uses (the same
-- columns as claim_join_token.sql, which locks it when a use is spent).
SELECT id::text, role, coalesce(node_name, ''), expires_at <= now(), uses >= max_uses, revoked_at IS NOT NULL,
       max_uses
FROM join_tokens WHERE secret_sha256 = $1
