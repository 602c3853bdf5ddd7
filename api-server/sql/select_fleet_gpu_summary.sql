-- What the fleet has, for RESOURCE_EXHAUSTED messages: selectable controllers, the most free
-- GPUs on one worker (as last reported), registered controllers, GPUs on selectable controllers
-- and how many of those sessions hold. $1 heartbeat freshness in seconds
WITH selectable AS (
  SELECT c.id, c.max_free_gpus_per_worker, c.gpus_total
  FROM controllers c
  WHERE c.status = 'healthy' AND NOT c.cordoned AND c.last_heartbeat > now() - make_interval(secs => $1)
)
SELECT (SELECT count(*) FROM selectable),
       (SELECT coalesce(max(max_free_gpus_per_worker), 0) FROM selectable),
       (SELECT count(*) FROM controllers),
       (SELECT coalesce(sum(gpus_total), 0) FROM selectable),
       (SELECT coalesce(sum(s.gpu_count), 0) FROM sessions s JOIN selectable c ON s.controller_id = c.id
        WHERE s.phase NOT IN ('TERMINATED', 'FAILED'))
