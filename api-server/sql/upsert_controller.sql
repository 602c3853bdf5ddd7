-- Registers a controller by name, keeping its id across re-registrations.
-- $1 name, $2 type, $3 endpoint, $4 labels json, $5 skills json, $6 capabilities json,
-- $7 capacity json, $8 gpus_total, $9 gpus_free, $10 max_free_gpus_per_worker,
-- $11 max_gpu_memory_bytes
INSERT INTO controllers (name, type, endpoint, labels, skills, capabilities, capacity,
                         gpus_total, gpus_free, max_free_gpus_per_worker, max_gpu_memory_bytes,
                         status, missed_health_checks, last_heartbeat)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10, $11,
        'healthy', 0, now())
ON CONFLICT (name) DO UPDATE SET
  type = EXCLUDED.type, endpoint = EXCLUDED.endpoint, labels = EXCLUDED.labels,
  skills = EXCLUDED.skills, capabilities = EXCLUDED.capabilities, capacity = EXCLUDED.capacity,
  gpus_total = EXCLUDED.gpus_total, gpus_free = EXCLUDED.gpus_free,
  max_free_gpus_per_worker = EXCLUDED.max_free_gpus_per_worker,
  max_gpu_memory_bytes = EXCLUDED.max_gpu_memory_bytes,
  status = 'healthy', missed_health_checks = 0, unreachable_since = NULL, unreachable_reason = '',
  last_heartbeat = now(), updated_at = now()
RETURNING id::text
