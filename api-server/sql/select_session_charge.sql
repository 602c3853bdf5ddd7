-- What a session is charged to and holds against its team's quota, and whether that team has
-- one.
-- $1 session id
SELECT s.team, s.gpu_model, s.gpu_memory_bytes, EXISTS (SELECT 1 FROM quotas q WHERE q.team = s.team)
FROM sessions s WHERE s.id = $1::uuid
