-- Counts a placement against the controller until its next heartbeat reports the truth.
-- $1 id
UPDATE controllers SET last_selected_at = clock_timestamp(), active_sessions = active_sessions + 1
WHERE id = $1::uuid
