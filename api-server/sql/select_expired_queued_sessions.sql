-- Queued sessions whose queue_timeout has passed, oldest first.
-- $1 limit
SELECT id::text, extract(epoch FROM now() - created_at)::float8 FROM sessions
WHERE phase = 'PENDING' AND queued_until IS NOT NULL AND queued_until <= now()
ORDER BY queued_until LIMIT $1
