-- $1 role, $2 name, $3 key_sha256, $4 bound_by: binds a name no one holds; returns nothing if
-- it is held (a concurrent enrolment got there first).
INSERT INTO node_identities (role, name, key_sha256, bound_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (role, name) DO NOTHING
RETURNING name
