-- Queued sessions in the order they are offered room: highest priority first; then the team
-- that used the fewest GPU-seconds in the last $2 seconds per unit of its weight
-- (queue_team_shares, migration 0014); then the oldest. Columns of select_session.sql, then
-- the placement it asked for (json), its priority and the controller its preemption nominated
-- it to ('' for none).
-- $1 limit, $2 fair-share window in seconds
WITH head AS (
  -- The order on the few columns it needs, a top-N sort of the queue (no full sort: 62 ms at
  -- 9,000 queued when it was a window over all of them, with a numeric key), then the head's
  -- rows read for their text.
  SELECT s.id, s.priority, coalesce(t.share, 0) AS share, s.created_at
  FROM sessions s LEFT JOIN queue_team_shares($2) t ON t.team = s.team
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
