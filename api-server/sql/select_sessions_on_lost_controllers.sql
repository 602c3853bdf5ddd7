-- Live sessions on lost controllers: offline by missed health checks, or deregistered (a
-- graceful shutdown, which a restarting controller also does) and not back within the grace.
-- $1 misses that make a controller offline, $2 grace after deregistration in seconds
SELECT s.id::text, c.name, c.missed_health_checks >= $1 AS by_missed_checks
FROM sessions s JOIN controllers c ON c.id = s.controller_id
WHERE c.status = 'offline'
  AND (c.missed_health_checks >= $1 OR c.updated_at < now() - make_interval(secs => $2))
  AND s.phase NOT IN ('TERMINATED', 'FAILED')
LIMIT 1000
