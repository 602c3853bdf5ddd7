-- $1 id
UPDATE controllers SET status = 'offline', updated_at = now() WHERE id = $1::uuid
