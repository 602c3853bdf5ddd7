-- Sessions still SCHEDULED long after their placement began: the replica placing them died
-- before it stored the controller's answer. They hold a reservation; they are failed so that it
-- is released, and their controller is asked to stop them in case it did start them.
-- $1 seconds after which a placement is abandoned
SELECT s.id::text, CASE WHEN c.status = 'healthy' THEN c.endpoint ELSE '' END  -- Never wait on a lost one.
FROM sessions s LEFT JOIN controllers c ON c.id = s.controller_id
WHERE s.phase = 'SCHEDULED' AND s.updated_at < now() - make_interval(secs => $1)
LIMIT 1000
