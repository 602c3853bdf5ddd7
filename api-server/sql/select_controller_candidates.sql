-- Healthy, uncordoned controllers with a recent heartbeat that can hold the session's GPUs
-- on one worker (as last reported), have GPUs of the model asked for, have room left after
-- the GPUs already reserved in PostgreSQL, and have its skills (on some worker; the controller
-- checks they coincide); least loaded first, least recently chosen first on ties (round-robin).
-- Not locked: a hint. The reservation (lock_controller_for_reservation.sql) decides. The index
-- controllers_selection_order (migration 0004) serves the order, so a few rows are read, not all.
-- The freshness test is written on an expression of last_heartbeat, not the bare column: the
-- column's statistics are always older than the heartbeats, so the planner would estimate that
-- no controller is fresh and scan and sort them all (22 ms at 10,000 instead of 0.2 ms).
-- $1 gpu count, $2 min GPU memory bytes, $3 heartbeat freshness in seconds,
-- $4 explicit controller id or '', $5 controller type or '', $6 selector labels json,
-- $7 max candidates, $8 required skills json array, $9 GPU model substring or ''
SELECT c.id::text, c.endpoint, c.name
FROM controllers c
WHERE c.status = 'healthy' AND NOT c.cordoned
  AND c.last_heartbeat + make_interval(secs => $3) > now()
  AND c.max_free_gpus_per_worker >= $1
  AND ($1 = 0 OR c.max_gpu_memory_bytes >= $2)
  AND ($4 = '' OR c.id::text = $4)
  AND ($5 = '' OR c.type = $5)
  AND c.labels @> $6::jsonb
  AND c.skills @> $8::jsonb
  AND ($1 = 0 OR $9 = '' OR EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(COALESCE(c.capacity->'gpu_models', '[]'::jsonb)) m
        WHERE strpos(lower(m), lower($9)) > 0))
  AND ($1 = 0 OR c.gpus_total - (
        SELECT COALESCE(sum(s.gpu_count), 0) FROM sessions s
        WHERE s.controller_id = c.id AND s.phase NOT IN ('TERMINATED', 'FAILED')) >= $1)
ORDER BY c.active_sessions, c.last_selected_at NULLS FIRST, c.id
LIMIT $7
