-- A queued session placed: SCHEDULED on the controller whose reservation lock the
-- transaction holds (its room and its team's quota checked), with the event that says so. No
-- row when it is no longer queued (deleted, expired, or placed by another replica).
-- Returns the columns of select_session.sql.
-- $1 id, $2 controller id, $3 message (the event's too), $4 GPU model and $5 GPU memory charged
WITH s AS (
  UPDATE sessions SET phase = 'SCHEDULED', controller_id = $2::uuid, message = $3, gpu_model = $4,
                      gpu_memory_bytes = $5, placed_at = now(), queued_until = NULL,
                      nominated_controller_id = NULL,
                      version = version + 1, updated_at = now()
  WHERE id = $1::uuid AND phase = 'PENDING' AND queued_until IS NOT NULL
  RETURNING *
), e AS (
  INSERT INTO session_events (session_id, from_phase, to_phase, message)
  SELECT id, 'PENDING', 'SCHEDULED', $3 FROM s
)
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
FROM s
