-- $1 role, $2 name: the key holding a released name registered with it again; it is held.
UPDATE node_identities SET released_at = NULL, updated_at = now()
WHERE role = $1 AND name = $2 AND released_at IS NOT NULL
