-- Run holding lock_controller_for_reservation.sql, so no other reservation on the controller
-- commits between this statement and the caller's: its GPUs, and how many sessions hold (every
-- session placed there that has not ended holds its GPUs, from the moment it is SCHEDULED until
-- it is TERMINATED or FAILED), and the queued sessions nominated to it (a preemption is making
-- room for them there: migration 0014). No row when it may no longer take sessions.
-- With what a session placed there is charged against a quota: the controller's GPU models
-- (a JSON array) and its largest GPU's memory.
-- $1 controller id
SELECT c.gpus_total,
       (SELECT COALESCE(sum(s.gpu_count), 0)::integer FROM sessions s
        WHERE s.controller_id = c.id AND s.phase NOT IN ('TERMINATED', 'FAILED'))
       + (SELECT COALESCE(sum(s.gpu_count), 0)::integer FROM sessions s
          WHERE s.nominated_controller_id = c.id AND s.phase = 'PENDING'),
       COALESCE(c.capacity->'gpu_models', '[]'::jsonb)::text, c.max_gpu_memory_bytes
FROM controllers c
WHERE c.id = $1::uuid AND c.status = 'healthy' AND NOT c.cordoned
