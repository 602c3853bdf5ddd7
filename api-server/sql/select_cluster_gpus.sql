-- GPUs on controllers that are not offline: total, and in use. $1 heartbeat freshness seconds
SELECT coalesce(sum(gpus_total), 0), coalesce(sum(gpus_total - gpus_free), 0)
FROM controllers
WHERE status <> 'offline' AND last_heartbeat > now() - make_interval(secs => $1)
