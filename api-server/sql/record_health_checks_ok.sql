-- Controllers that answered HealthCheck, many in one statement (an offline one stays offline
-- until it heartbeats). Rows are locked in id order, as store_heartbeats.sql
-- does, so the two never deadlock. $1 a JSON array of {id, capacity, load, gpus_total,
-- gpus_free, max_free_gpus_per_worker, max_gpu_memory_bytes, active_sessions}, capacity and
-- load as protobuf JSON.
WITH answered AS (
  SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS a(
    id uuid, capacity jsonb, load jsonb, gpus_total integer, gpus_free integer,
    max_free_gpus_per_worker integer, max_gpu_memory_bytes bigint, active_sessions integer)
), changed AS (
  -- Only the rows the answer changes: on a steady fleet the heartbeats have stored the same a
  -- moment ago, and writing (or just locking) a row writes its page and the WAL again.
  SELECT c.id FROM controllers c JOIN answered a ON a.id = c.id
  WHERE c.status <> 'offline'
    AND (c.status, c.missed_health_checks, c.unreachable_since IS NULL, c.capacity, c.load, c.gpus_total, c.gpus_free,
         c.max_free_gpus_per_worker, c.max_gpu_memory_bytes, c.active_sessions)
        IS DISTINCT FROM ('healthy', 0, true, a.capacity, a.load, a.gpus_total, a.gpus_free,
                          a.max_free_gpus_per_worker, a.max_gpu_memory_bytes, a.active_sessions)
  ORDER BY c.id FOR NO KEY UPDATE OF c
)
UPDATE controllers c SET
  status = 'healthy', missed_health_checks = 0, unreachable_since = NULL, unreachable_reason = '',
  capacity = a.capacity, load = a.load,
  gpus_total = a.gpus_total, gpus_free = a.gpus_free,
  max_free_gpus_per_worker = a.max_free_gpus_per_worker,
  max_gpu_memory_bytes = a.max_gpu_memory_bytes, active_sessions = a.active_sessions,
  updated_at = now()
FROM answered a
WHERE c.id = a.id AND c.id IN (SELECT id FROM changed) AND c.status <> 'offline'
