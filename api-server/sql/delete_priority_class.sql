-- Sessions of the class keep the priority they were created with.
-- $1 name
DELETE FROM priority_classes WHERE name = $1 RETURNING name
