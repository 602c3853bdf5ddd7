-- $1 owner, $2 request_id or '', $3 template_id or '', $4 spec json, $5 labels json,
-- $6 gpu_count, $7 phase
INSERT INTO sessions (owner, request_id, template_id, spec, labels, gpu_count, phase)
VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4::jsonb, $5::jsonb, $6, $7)
RETURNING id::text
