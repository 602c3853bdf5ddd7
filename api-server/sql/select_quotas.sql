-- Quotas with what each team's live sessions hold against each limit (every session that has
-- not ended holds its GPUs and its place, from its create until TERMINATED or FAILED; one
-- still queued, PENDING, holds nothing until it is placed). Read
-- under the team's lock (lock_team_for_quota.sql) when a create is checked against it.
-- $1 team, or '' for all
SELECT q.team, q.max_gpus, q.max_sessions, q.max_gpu_memory_bytes, q.max_gpus_by_model::text,
       u.sessions, u.gpus, u.gpu_memory_bytes,
       (SELECT COALESCE(jsonb_object_agg(k, (
                 SELECT COALESCE(sum(s.gpu_count), 0) FROM sessions s
                 WHERE s.team = q.team AND s.phase NOT IN ('PENDING', 'TERMINATED', 'FAILED')
                   AND strpos(lower(s.gpu_model), lower(k)) > 0)), '{}'::jsonb)
        FROM jsonb_object_keys(q.max_gpus_by_model) k)::text,
       extract(epoch FROM q.updated_at)::float8, q.weight
FROM quotas q
CROSS JOIN LATERAL (
  SELECT count(*)::integer AS sessions, COALESCE(sum(s.gpu_count), 0)::integer AS gpus,
         COALESCE(sum(s.gpu_memory_bytes), 0)::bigint AS gpu_memory_bytes
  FROM sessions s WHERE s.team = q.team AND s.phase NOT IN ('PENDING', 'TERMINATED', 'FAILED')) u
WHERE $1 = '' OR q.team = $1
ORDER BY q.team
