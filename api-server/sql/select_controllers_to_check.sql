-- Controllers the health checker probes: all but offline ones.
SELECT id::text, endpoint, name, missed_health_checks, status FROM controllers
WHERE status <> 'offline'
ORDER BY name
