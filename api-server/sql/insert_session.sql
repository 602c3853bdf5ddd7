-- $1 owner, $2 request_id or '', $3 template_id or '', $4 spec json, $5 labels json,
-- $6 gpu_count, $7 phase, $8 controller id or '' (the reservation), $9 message, $10 team charged,
-- $11 GPU model charged, $12 GPU memory charged, $13 priority (its class's value)
INSERT INTO sessions (owner, request_id, template_id, spec, labels, gpu_count, phase, controller_id, message,
                      team, gpu_model, gpu_memory_bytes, priority, placed_at)
VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4::jsonb, $5::jsonb, $6, $7, NULLIF($8, '')::uuid, $9, $10, $11, $12,
        $13, CASE WHEN $7 = 'PENDING' THEN NULL ELSE now() END)
RETURNING id::text
