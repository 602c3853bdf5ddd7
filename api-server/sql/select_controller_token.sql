-- $1 controller id. The hash is compared in constant time by the caller; the name is the
-- controller's, for the caller's certificate to match.
SELECT t.token_sha256, t.expires_at > now() AS live, c.name
FROM controller_tokens t JOIN controllers c ON c.id = t.controller_id
WHERE t.controller_id = $1::uuid
