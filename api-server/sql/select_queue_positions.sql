-- Where queued sessions stand in the order the queue is served in (select_queued_sessions.sql's
-- order, which this must keep to): for each of the given ids that is queued, its place (from 1)
-- and how many are queued.
-- $1 ids (a JSON array of strings), $2 fair-share window in seconds
WITH ordered AS (
  SELECT s.id, row_number() OVER (ORDER BY s.priority DESC, coalesce(t.share, 0), s.created_at, s.id) AS place,
         count(*) OVER () AS queued
  FROM sessions s LEFT JOIN queue_team_shares($2) t ON t.team = s.team
  WHERE s.phase = 'PENDING' AND s.queued_until IS NOT NULL
)
SELECT id::text, place, queued FROM ordered
WHERE id::text IN (SELECT jsonb_array_elements_text($1::jsonb))
