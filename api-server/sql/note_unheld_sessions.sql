-- One heartbeat's reverse reconciliation: notes which of the controller's live sessions it did
-- not list (and forgets those it lists again), and returns those unlisted for longer than the
-- grace. A session changed in the last $4 seconds is left out: it may have been placed after
-- the controller took the snapshot this heartbeat carries.
-- $1 controller id, $2 the ids it holds (json array of UUIDs), $3 grace in seconds, $4 seconds
WITH held AS (
  SELECT jsonb_array_elements_text($2::jsonb)::uuid AS id
), missing AS (
  SELECT s.id FROM sessions s
  WHERE s.controller_id = $1::uuid
    AND s.phase IN ('STARTING', 'RUNNING', 'HIBERNATED', 'TERMINATING')
    AND s.updated_at < now() - make_interval(secs => $4)
    AND s.id NOT IN (SELECT id FROM held)
), forgotten AS (
  DELETE FROM unheld_sessions u USING sessions s
  WHERE u.session_id = s.id AND s.controller_id = $1::uuid AND u.session_id NOT IN (SELECT id FROM missing)
), noted AS (
  INSERT INTO unheld_sessions (session_id) SELECT id FROM missing ON CONFLICT DO NOTHING
)
SELECT u.session_id::text FROM unheld_sessions u JOIN missing m ON m.id = u.session_id
WHERE u.since < now() - make_interval(secs => $3)
