-- $1 id
SELECT endpoint, name FROM controllers WHERE id = $1::uuid
