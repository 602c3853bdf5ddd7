-- Every join token that can still be used, or could until recently (a week after it expired,
-- was used up or revoked), newest first. Never the secret's hash.
SELECT id::text, role, coalesce(node_name, ''), extract(epoch FROM expires_at)::bigint, max_uses, uses,
       created_by, extract(epoch FROM created_at)::bigint,
       coalesce(extract(epoch FROM last_used_at)::bigint, 0), coalesce(extract(epoch FROM revoked_at)::bigint, 0)
FROM join_tokens
WHERE greatest(expires_at, coalesce(revoked_at, expires_at)) > now() - interval '7 days'
ORDER BY created_at DESC, id
