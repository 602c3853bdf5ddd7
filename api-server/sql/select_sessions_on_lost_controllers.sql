-- Live sessions on controllers taken offline by missed health checks (not by a graceful
-- Deregister, which a restarting controller does). $1 misses that make a controller offline
SELECT s.id::text, c.name FROM sessions s JOIN controllers c ON c.id = s.controller_id
WHERE c.status = 'offline' AND c.missed_health_checks >= $1
  AND s.phase NOT IN ('TERMINATED', 'FAILED')
LIMIT 1000
