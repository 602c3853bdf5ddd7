-- A controller did not answer. $1 id, $2 misses that make it unhealthy, $3 misses that make it
-- offline. Returns the status before and after.
UPDATE controllers c SET
  missed_health_checks = c.missed_health_checks + 1,
  status = CASE WHEN c.missed_health_checks + 1 >= $3 THEN 'offline'
                WHEN c.missed_health_checks + 1 >= $2 THEN 'unhealthy'
                ELSE c.status END,
  updated_at = now()
FROM (SELECT id, status FROM controllers WHERE id = $1::uuid FOR NO KEY UPDATE) old
WHERE c.id = old.id
RETURNING old.status, c.status
