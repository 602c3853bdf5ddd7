-- What a session is charged to and holds against its team's quota, and whether that team has
-- one; and the controller it is nominated to ('' for none: migration 0014).
-- $1 session id
SELECT s.team, s.gpu_model, s.gpu_memory_bytes, EXISTS (SELECT 1 FROM quotas q WHERE q.team = s.team),
       coalesce(s.nominated_controller_id::text, '')
FROM sessions s WHERE s.id = $1::uuid
