-- $1 role, $2 node_name ('' for any new name), $3 secret_sha256, $4 lifetime in seconds,
-- $5 max_uses, $6 created_by
INSERT INTO join_tokens (role, node_name, secret_sha256, expires_at, max_uses, created_by)
VALUES ($1, NULLIF($2, ''), $3, now() + make_interval(secs => $4), $5, $6)
RETURNING id::text, extract(epoch FROM expires_at)::bigint, extract(epoch FROM created_at)::bigint
