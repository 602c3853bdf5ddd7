-- A queued session whose preemption is making room on a controller: nominated there (its GPUs
-- count as reserved on it for every other session: select_controller_room.sql), the message
-- saying which sessions it waits for. No row when it is no longer queued.
-- Returns the columns of select_session.sql.
-- $1 id, $2 controller id, $3 message
UPDATE sessions SET nominated_controller_id = $2::uuid, message = $3, version = version + 1, updated_at = now()
WHERE id = $1::uuid AND phase = 'PENDING' AND queued_until IS NOT NULL
RETURNING id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
          coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
          gpu_uuids::text, url, message, version,
          extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
          coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
