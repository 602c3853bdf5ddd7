-- $1 role, $2 name, $3 key_sha256 of the caller's certificate: the node stopping gracefully
-- hands its name back, if that key holds it (current or renewed-from). Returns the name, or
-- nothing if another key holds it.
UPDATE node_identities SET released_at = now(), updated_at = now()
WHERE role = $1 AND name = $2 AND ($3 = key_sha256 OR $3 = previous_key_sha256)
RETURNING name
