-- Who holds a node name: $1 role, $2 name. Returns the bound key's SHA-256, the key it was
-- renewed from ('' if none), how it was bound, and whether its node handed it back (released:
-- a join token may claim it); for a controller registered without a bound key (one that has
-- not registered since keys were bound), '', '', 'registration', false. No row: the name is free.
SELECT key_sha256, coalesce(previous_key_sha256, ''), bound_by, released_at IS NOT NULL
FROM node_identities WHERE role = $1 AND name = $2
UNION ALL
SELECT '', '', 'registration', false FROM controllers WHERE $1 = 'controller' AND name = $2
  AND NOT EXISTS (SELECT 1 FROM node_identities WHERE role = $1 AND name = $2)
