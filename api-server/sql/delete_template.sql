-- Sessions made from it keep their merged spec; their template_id becomes NULL. $1 id
DELETE FROM templates WHERE id = $1 RETURNING id
