-- $1 team, $2 max_gpus, $3 max_sessions, $4 max_gpus_by_model json, $5 max_gpu_memory_bytes,
-- $6 weight (1..1000)
INSERT INTO quotas (team, max_gpus, max_sessions, max_gpus_by_model, max_gpu_memory_bytes, weight)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT (team) DO UPDATE SET max_gpus = EXCLUDED.max_gpus, max_sessions = EXCLUDED.max_sessions,
  max_gpus_by_model = EXCLUDED.max_gpus_by_model, max_gpu_memory_bytes = EXCLUDED.max_gpu_memory_bytes,
  weight = EXCLUDED.weight, updated_at = now()
