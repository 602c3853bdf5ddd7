-- The running sessions a create could preempt (PlanPreemption chooses among them): of a
-- preemptible class, of a priority below the create's, running for at least their class's
-- min_runtime, on a healthy, uncordoned, heartbeating controller that matches where the create
-- may run, on a worker with GPUs of the model and memory it asks for. With each: whether its
-- team holds more GPUs than its quota allows, the worker's free GPUs (its controller's last
-- heartbeat) and the controller's unreserved GPUs (as select_controller_room.sql counts them).
-- A class deleted since a session was created makes it not preemptible.
-- $1 gpu count, $2 min GPU memory bytes, $3 heartbeat freshness in seconds,
-- $4 controller id or '', $5 controller type or '', $6 selector labels json, $7 skills json array,
-- $8 GPU model substring or '', $9 the create's priority, $10 at most this many rows
WITH eligible AS (
  SELECT c.id, c.capacity, c.gpus_total
  FROM controllers c
  WHERE c.status = 'healthy' AND NOT c.cordoned
    AND c.gpus_total >= $1::integer
    AND c.last_heartbeat + make_interval(secs => $3) > now()
    AND ($4 = '' OR c.id::text = $4)
    AND ($5 = '' OR c.type = $5)
    AND c.labels @> $6::jsonb
    AND c.skills @> $7::jsonb
), over_quota AS (
  SELECT q.team FROM quotas q
  WHERE q.max_gpus > 0 AND q.max_gpus < (
    SELECT coalesce(sum(s.gpu_count), 0) FROM sessions s
    WHERE s.team = q.team AND s.phase NOT IN ('PENDING', 'TERMINATED', 'FAILED'))
)
SELECT s.id::text, coalesce(s.spec->>'priority_class', ''), s.gpu_count, s.priority,
       extract(epoch FROM s.started_at)::float8, s.team IN (SELECT team FROM over_quota),
       e.id::text, s.worker_id, coalesce((w.room->>'gpus_free')::integer, 0),
       -- Summed for the rows returned only, not for every eligible controller (10,000 of them
       -- on a large fleet, for each create that finds no room).
       (e.gpus_total
        - (SELECT coalesce(sum(r.gpu_count), 0) FROM sessions r
           WHERE r.controller_id = e.id AND r.phase NOT IN ('TERMINATED', 'FAILED'))
        - (SELECT coalesce(sum(r.gpu_count), 0) FROM sessions r
           WHERE r.nominated_controller_id = e.id AND r.phase = 'PENDING'))::integer
FROM sessions s
JOIN eligible e ON e.id = s.controller_id
JOIN priority_classes pc ON pc.name = s.spec->>'priority_class' AND pc.preemptible
CROSS JOIN LATERAL (
  SELECT r AS room FROM jsonb_array_elements(coalesce(e.capacity->'workers', '[]'::jsonb)) r
  WHERE r->>'worker_id' = s.worker_id
) w
WHERE s.phase IN ('RUNNING', 'HIBERNATED') AND s.priority < $9 AND s.gpu_count > 0
  AND s.started_at IS NOT NULL
  AND s.started_at + make_interval(secs => pc.min_runtime_seconds) <= now()
  AND coalesce((w.room->>'max_gpu_memory_bytes')::bigint, 0) >= $2
  AND ($8 = '' OR EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(coalesce(w.room->'gpu_models', '[]'::jsonb)) m
        WHERE strpos(lower(m), lower($8)) > 0))
ORDER BY s.priority, s.started_at DESC, s.id
LIMIT $10
