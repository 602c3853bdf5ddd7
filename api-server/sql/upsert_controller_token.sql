-- Replaces a controller's token; the previous one stops working.
-- $1 controller id, $2 token sha256, $3 lifetime in seconds
INSERT INTO controller_tokens (controller_id, token_sha256, expires_at)
VALUES ($1::uuid, $2, now() + make_interval(secs => $3))
ON CONFLICT (controller_id) DO UPDATE SET
  token_sha256 = EXCLUDED.token_sha256, expires_at = EXCLUDED.expires_at, created_at = now()
RETURNING extract(epoch FROM expires_at)::bigint
