-- Removes one batch of ended sessions whose end is older than the retention; their events and
-- any unheld record go with them (ON DELETE CASCADE). Rows another statement holds are skipped,
-- so a create, a status update or a watch never waits behind a prune.
-- $1 retention in seconds, $2 batch size. Returns how many sessions were removed.
WITH doomed AS (
  SELECT id FROM sessions
  WHERE ended_at IS NOT NULL AND ended_at < now() - make_interval(secs => $1)
    AND phase IN ('TERMINATED', 'FAILED')
  ORDER BY ended_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM sessions s USING doomed d WHERE s.id = d.id RETURNING 1
)
SELECT count(*) FROM gone
