-- $1 controller id. The hashes are compared in constant time by the caller; the name is the
-- controller's, for the caller's certificate to match. The previous token (rotated away) is
-- still good while its grace lasts.
SELECT t.token_sha256, t.expires_at > now() AS live, c.name,
       coalesce(t.previous_token_sha256, ''), coalesce(t.previous_valid_until > now(), false)
FROM controller_tokens t JOIN controllers c ON c.id = t.controller_id
WHERE t.controller_id = $1::uuid
