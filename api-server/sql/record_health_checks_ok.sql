-- Controllers that answered HealthCheck, many in one statement (an offline one stays offline
-- until it heartbeats). Rows are locked in id order, as update_controller_heartbeats.sql
-- does, so the two never deadlock. $1 a JSON array of {id, capacity, load, gpus_total,
-- gpus_free, max_free_gpus_per_worker, max_gpu_memory_bytes, active_sessions}, capacity and
-- load as protobuf JSON.
WITH answered AS (
  SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS a(
    id uuid, capacity jsonb, load jsonb, gpus_total integer, gpus_free integer,
    max_free_gpus_per_worker integer, max_gpu_memory_bytes bigint, active_sessions integer)
), locked AS (
  SELECT c.id FROM controllers c WHERE c.id IN (SELECT id FROM answered) ORDER BY c.id FOR UPDATE
)
UPDATE controllers c SET
  status = 'healthy', missed_health_checks = 0, capacity = a.capacity, load = a.load,
  gpus_total = a.gpus_total, gpus_free = a.gpus_free,
  max_free_gpus_per_worker = a.max_free_gpus_per_worker,
  max_gpu_memory_bytes = a.max_gpu_memory_bytes, active_sessions = a.active_sessions,
  updated_at = now()
FROM answered a
WHERE c.id = a.id AND c.id IN (SELECT id FROM locked) AND c.status <> 'offline'
