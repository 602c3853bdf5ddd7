-- Sessions still SCHEDULED long after their placement began: the replica placing them died
-- before the controller answered (a controller that starts a session reports it, which moves
-- it on). They hold a reservation; they are failed so that it is released.
-- $1 seconds after which a placement is abandoned
SELECT id::text FROM sessions
WHERE phase = 'SCHEDULED' AND updated_at < now() - make_interval(secs => $1)
LIMIT 1000
