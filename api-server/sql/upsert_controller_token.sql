-- Replaces a controller's token. The previous one keeps working for $4 seconds (0 on
-- registration: a controller that registers again has the new one already).
-- $1 controller id, $2 token sha256, $3 lifetime in seconds, $4 grace in seconds
INSERT INTO controller_tokens (controller_id, token_sha256, expires_at)
VALUES ($1::uuid, $2, now() + make_interval(secs => $3))
ON CONFLICT (controller_id) DO UPDATE SET
  previous_token_sha256 = controller_tokens.token_sha256,
  previous_valid_until = least(controller_tokens.expires_at, now() + make_interval(secs => $4)),
  token_sha256 = EXCLUDED.token_sha256, expires_at = EXCLUDED.expires_at, created_at = now()
RETURNING extract(epoch FROM expires_at)::bigint
