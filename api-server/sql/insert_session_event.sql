-- $1 session id, $2 from phase or '', $3 to phase, $4 message
INSERT INTO session_events (session_id, from_phase, to_phase, message)
VALUES ($1::uuid, NULLIF($2, ''), $3, $4)
