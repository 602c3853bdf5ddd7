-- Queued sessions in the order they are offered room: highest priority first; then the team
-- that used the fewest GPU-seconds in the last $2 seconds (its sessions' GPUs times the time
-- each held them within the window) per unit of its weight (its quota's; 1 without); then the
-- oldest. Columns of select_session.sql, then
-- the placement it asked for (json), its priority and the controller its preemption nominated
-- it to ('' for none).
-- $1 limit, $2 fair-share window in seconds
WITH used AS (
  SELECT s.team, sum(s.gpu_count * extract(epoch FROM
           coalesce(s.ended_at, now()) - greatest(s.placed_at, now() - make_interval(secs => $2)))::float8) AS gpu_seconds
  FROM sessions s
  WHERE s.placed_at IS NOT NULL AND s.gpu_count > 0
    AND coalesce(s.ended_at, now()) > now() - make_interval(secs => $2)
  GROUP BY s.team
), shares AS (
  -- Per team (a few rows), not per queued session: float8, cheap to sort by.
  SELECT u.team, u.gpu_seconds / coalesce(q.weight, 1) AS share FROM used u LEFT JOIN quotas q ON q.team = u.team
), head AS (
  -- The order on the few columns it needs, a top-N sort of the queue (no full sort: 62 ms at
  -- 9,000 queued when it was a window over all of them, with a numeric key), then the head's
  -- rows read for their text.
  SELECT s.id, s.priority, coalesce(t.share, 0) AS share, s.created_at
  FROM sessions s LEFT JOIN shares t ON t.team = s.team
  WHERE s.phase = 'PENDING' AND s.queued_until IS NOT NULL
  ORDER BY s.priority DESC, coalesce(t.share, 0), s.created_at, s.id
  LIMIT $1
)
SELECT s.id::text, s.owner, coalesce(s.request_id, ''), coalesce(s.template_id, ''),
       coalesce(s.controller_id::text, ''), s.worker_id, s.node_id, s.phase, s.spec::text,
       s.gpu_uuids::text, s.url, s.message, s.version,
       extract(epoch FROM s.created_at)::float8, extract(epoch FROM s.updated_at)::float8,
       coalesce(extract(epoch FROM s.ended_at)::float8, 0), s.conditions::text,
       s.queue_placement::text, s.priority, coalesce(s.nominated_controller_id::text, '')
FROM head h JOIN sessions s ON s.id = h.id
ORDER BY h.priority DESC, h.share, h.created_at, h.id
