-- The live sessions placed on a controller, oldest first: what a drain stops. $1 controller id,
-- $2 at most this many.
SELECT id::text FROM sessions
WHERE controller_id = $1::uuid AND phase NOT IN ('TERMINATED', 'FAILED')
ORDER BY created_at
LIMIT $2
