-- $1 controller id. The hash is compared in constant time by the caller.
SELECT token_sha256, expires_at > now() AS live
FROM controller_tokens WHERE controller_id = $1::uuid
