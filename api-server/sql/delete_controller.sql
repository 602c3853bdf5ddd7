-- $1 id
DELETE FROM controllers WHERE id = $1::uuid RETURNING id
