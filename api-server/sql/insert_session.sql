-- $1 owner, $2 request_id or '', $3 template_id or '', $4 spec json, $5 labels json,
-- $6 gpu_count, $7 phase, $8 controller id or '' (the reservation), $9 message
INSERT INTO sessions (owner, request_id, template_id, spec, labels, gpu_count, phase, controller_id, message)
VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4::jsonb, $5::jsonb, $6, $7, NULLIF($8, '')::uuid, $9)
RETURNING id::text
