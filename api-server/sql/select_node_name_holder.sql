-- Who holds a node name: $1 role, $2 name. Returns the bound key's SHA-256, the key it was
-- renewed from ('' if none) and how it was bound; for a controller registered without a bound
-- key (one that has not registered since keys were bound), '', '' and 'registration'. No row:
-- the name is free.
SELECT key_sha256, coalesce(previous_key_sha256, ''), bound_by FROM node_identities WHERE role = $1 AND name = $2
UNION ALL
SELECT '', '', 'registration' FROM controllers WHERE $1 = 'controller' AND name = $2
  AND NOT EXISTS (SELECT 1 FROM node_identities WHERE role = $1 AND name = $2)
