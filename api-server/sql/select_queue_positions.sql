-- Where queued sessions stand in the order the queue is served in (select_queued_sessions.sql's
-- order, which this must keep to): for each of the given ids that is queued, its place (from 1)
-- and how many are queued.
-- $1 ids (a JSON array of strings), $2 fair-share window in seconds
WITH used AS (
  SELECT s.team, sum(s.gpu_count * extract(epoch FROM
           coalesce(s.ended_at, now()) - greatest(s.placed_at, now() - make_interval(secs => $2)))::float8) AS gpu_seconds
  FROM sessions s
  WHERE s.placed_at IS NOT NULL AND s.gpu_count > 0
    AND coalesce(s.ended_at, now()) > now() - make_interval(secs => $2)
  GROUP BY s.team
), shares AS (
  SELECT u.team, u.gpu_seconds / coalesce(q.weight, 1) AS share FROM used u LEFT JOIN quotas q ON q.team = u.team
), ordered AS (
  SELECT s.id, row_number() OVER (ORDER BY s.priority DESC, coalesce(t.share, 0), s.created_at, s.id) AS place,
         count(*) OVER () AS queued
  FROM sessions s LEFT JOIN shares t ON t.team = s.team
  WHERE s.phase = 'PENDING' AND s.queued_until IS NOT NULL
)
SELECT id::text, place, queued FROM ordered
WHERE id::text IN (SELECT jsonb_array_elements_text($1::jsonb))
