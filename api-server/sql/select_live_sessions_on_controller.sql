-- $1 controller id
SELECT id::text FROM sessions
WHERE controller_id = $1::uuid AND phase NOT IN ('TERMINATED', 'FAILED')
