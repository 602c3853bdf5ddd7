-- A controller did not answer. $1 id, $2 misses that make it unhealthy, $3 misses that make it
-- offline, $4 seconds without a heartbeat that, with $3 misses, make it offline, $5 why the
-- check failed, $6 whether its heartbeats are late: then this one miss makes it unhealthy (two
-- signals agree: it neither reports nor answers). One that cannot be called but still
-- heartbeats is unhealthy after $2 misses, never offline: its sessions run and report, and only
-- new placements must avoid it.
-- Returns the status before and after.
UPDATE controllers c SET
  missed_health_checks = c.missed_health_checks + 1,
  status = CASE WHEN c.missed_health_checks + 1 >= $3
                     AND (c.last_heartbeat IS NULL OR c.last_heartbeat < now() - make_interval(secs => $4))
                  THEN 'offline'
                WHEN c.missed_health_checks + 1 >= $2 OR $6 THEN 'unhealthy'
                ELSE c.status END,
  unreachable_since = coalesce(c.unreachable_since, now()),
  unreachable_reason = $5,
  updated_at = now()
FROM (SELECT id, status FROM controllers WHERE id = $1::uuid FOR NO KEY UPDATE) old
WHERE c.id = old.id
RETURNING old.status, c.status
