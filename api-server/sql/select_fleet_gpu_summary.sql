-- What the fleet has, for RESOURCE_EXHAUSTED messages. $1 heartbeat freshness in seconds
SELECT count(*) FILTER (WHERE status = 'healthy' AND NOT cordoned
                          AND last_heartbeat > now() - make_interval(secs => $1)),
       coalesce(max(max_free_gpus_per_worker) FILTER (WHERE status = 'healthy' AND NOT cordoned
                          AND last_heartbeat > now() - make_interval(secs => $1)), 0),
       count(*)
FROM controllers
