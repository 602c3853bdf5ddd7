-- A victim of a preemption: TERMINATING, the session it makes room for recorded (so that one
-- does not preempt again while it stops) and a "Preempted" condition added; its stop follows
-- the normal path (its controller's SIGTERM, grace, SIGKILL, then TERMINATED). No row when it
-- no longer runs (it ended meanwhile: its GPUs are free anyway). With its session_events row.
-- Returns the columns of select_session.sql, then the phase it left.
-- $1 id, $2 message, $3 preemptor id, $4 the condition (a JSON object)
WITH before AS (
  SELECT id, phase FROM sessions WHERE id = $1::uuid AND phase IN ('RUNNING', 'HIBERNATED') FOR UPDATE
), s AS (
  UPDATE sessions SET phase = 'TERMINATING', message = $2, preempted_by = $3::uuid,
                      conditions = conditions || jsonb_build_array($4::jsonb),
                      version = version + 1, updated_at = now()
  WHERE id IN (SELECT id FROM before)
  RETURNING *
), e AS (
  INSERT INTO session_events (session_id, from_phase, to_phase, message)
  SELECT s.id, b.phase, 'TERMINATING', $2 FROM s JOIN before b ON b.id = s.id
)
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
FROM s
