-- Counts placements (sessions, or an invoke) against the controller until its next heartbeat
-- reports the truth, and moves it behind its equals in the round-robin. A reservation batch
-- runs it last in its transaction: the row lock it takes (heartbeats update the row too) is
-- then held only for the commit.
-- $1 id, $2 how many placed
UPDATE controllers SET last_selected_at = clock_timestamp(), active_sessions = active_sessions + $2
WHERE id = $1::uuid
