-- Controllers the health checker may probe: all but offline ones, each with whether it must be
-- probed this round (urgent: its heartbeats are late, or it is not healthy, or it missed the
-- last check) and whether its heartbeats are late (a missed check then makes it unhealthy at
-- once). The others are probed in a slow sweep, oldest first (health_checker.h).
-- $1 seconds after which a heartbeat is late.
SELECT id::text, endpoint, name,
  (status <> 'healthy' OR missed_health_checks > 0 OR late) AS urgent, late
FROM (
  SELECT c.*, (c.last_heartbeat IS NULL OR c.last_heartbeat < now() - make_interval(secs => $1)) AS late
  FROM controllers c WHERE c.status <> 'offline'
) c
ORDER BY name
