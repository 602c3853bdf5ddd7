-- A controller answered HealthCheck. $1 id, $2 capacity json, $3 load json, $4 gpus_total,
-- $5 gpus_free, $6 max_free_gpus_per_worker, $7 max_gpu_memory_bytes, $8 active_sessions
UPDATE controllers SET
  status = 'healthy', missed_health_checks = 0, capacity = $2::jsonb, load = $3::jsonb,
  gpus_total = $4, gpus_free = $5, max_free_gpus_per_worker = $6, max_gpu_memory_bytes = $7,
  active_sessions = $8, updated_at = now()
WHERE id = $1::uuid AND status <> 'offline'
