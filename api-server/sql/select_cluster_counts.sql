-- kind ('controller' / 'session' / 'condition'), key, count: controllers by status, sessions by
-- phase, and controllers (not offline) by failing condition. $1 heartbeat freshness in seconds.
SELECT 'controller', status, count(*) FROM controllers GROUP BY status
UNION ALL
SELECT 'condition', 'Reachable', count(*) FROM controllers
WHERE status = 'unhealthy'
UNION ALL
SELECT 'condition', 'Heartbeating', count(*) FROM controllers
WHERE status <> 'offline' AND coalesce(last_heartbeat + make_interval(secs => $1) <= now(), true)
UNION ALL
SELECT 'session', phase, count(*) FROM sessions GROUP BY phase
