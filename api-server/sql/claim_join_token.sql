-- The join token with this id, locked for the transaction that spends a use of it (two nodes
-- racing for its last use take turns). $1 id.
-- Returns id, role, node_name ('' for any), expired, used up, revoked, max_uses: the same
-- columns as select_join_token.sql.
SELECT id::text, role, coalesce(node_name, ''), expires_at <= now(), uses >= max_uses, revoked_at IS NOT NULL,
       max_uses
FROM join_tokens WHERE id = $1::uuid
FOR UPDATE
