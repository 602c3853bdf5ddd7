-- Moves a SCHEDULED session's reservation to another controller after the one it was reserved
-- on refused to start it, with the event that says so. Run holding the new controller's
-- reservation lock, its room checked. Returns no row when the session has moved on meanwhile
-- (started, deleted, or moved by another replica).
-- $1 id, $2 controller refusing it, $3 controller taking it, $4 message (the event's too),
-- $5 GPU model and $6 GPU memory charged there
WITH s AS (
  UPDATE sessions SET controller_id = $3::uuid, message = $4, gpu_model = $5, gpu_memory_bytes = $6,
                      version = version + 1, updated_at = now()
  WHERE id = $1::uuid AND phase = 'SCHEDULED' AND controller_id = $2::uuid
  RETURNING id
), e AS (
  INSERT INTO session_events (session_id, from_phase, to_phase, message)
  SELECT id, 'SCHEDULED', 'SCHEDULED', $4 FROM s
)
SELECT id::text FROM s
