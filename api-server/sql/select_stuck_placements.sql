-- Sessions still SCHEDULED after their placement should have ended: the replica placing them
-- died before it asked the controller or stored its answer. Past $1 seconds they are resumed
-- (asked of their controller again, idempotent there); past $2 seconds with their controller
-- unhealthy, past $3 seconds with it healthy but never answering, or once it refuses them,
-- they are failed so that their reservation is released.
-- Returns the id, the controller's endpoint ('' unless healthy: never wait on a lost one), and
-- whether it is past $2 and past $3.
SELECT s.id::text, CASE WHEN c.status = 'healthy' THEN c.endpoint ELSE '' END,
       s.updated_at < now() - make_interval(secs => $2),
       s.updated_at < now() - make_interval(secs => $3)
FROM sessions s LEFT JOIN controllers c ON c.id = s.controller_id
WHERE s.phase = 'SCHEDULED' AND s.updated_at < now() - make_interval(secs => $1)
ORDER BY s.updated_at
LIMIT 1000
