-- $1 id, $2 description, $3 preferred controller type, $4 spec json. A taken id is a unique
-- violation (ALREADY_EXISTS).
INSERT INTO templates (id, description, preferred_controller_type, spec)
VALUES ($1, $2, $3, $4::jsonb)
RETURNING extract(epoch FROM created_at)::bigint
