-- Healthy, uncordoned controllers with a recent heartbeat that can hold the session's GPUs
-- on one worker and have its skills (on some worker; the controller checks they coincide), least loaded first, least recently chosen first on ties (round-robin).
-- $1 gpu count, $2 min GPU memory bytes, $3 heartbeat freshness in seconds,
-- $4 explicit controller id or '', $5 controller type or '', $6 selector labels json,
-- $7 max candidates, $8 required skills json array
SELECT id::text, endpoint, name
FROM controllers
WHERE status = 'healthy' AND NOT cordoned
  AND last_heartbeat > now() - make_interval(secs => $3)
  AND max_free_gpus_per_worker >= $1
  AND ($1 = 0 OR max_gpu_memory_bytes >= $2)
  AND ($4 = '' OR id::text = $4)
  AND ($5 = '' OR type = $5)
  AND labels @> $6::jsonb
  AND skills @> $8::jsonb
ORDER BY active_sessions, last_selected_at NULLS FIRST, id
LIMIT $7
