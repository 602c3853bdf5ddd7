-- $1 id, $2 cordoned
UPDATE controllers SET cordoned = $2, updated_at = now() WHERE id = $1::uuid RETURNING id
