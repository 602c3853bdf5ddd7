-- The capabilities healthy, uncordoned controllers with a recent heartbeat serve, by name,
-- with their versions (comma-separated: a version has no comma) and how many controllers
-- serve each (InvokeService.ListCapabilities).
-- $1 name prefix, $2 heartbeat freshness in seconds
SELECT cap->>'name', string_agg(DISTINCT COALESCE(cap->>'version', ''), ','), count(DISTINCT c.id)::integer
FROM controllers c, jsonb_array_elements(c.capabilities) cap
WHERE c.status = 'healthy' AND NOT c.cordoned
  AND c.last_heartbeat > now() - make_interval(secs => $2)
  AND starts_with(cap->>'name', $1)
GROUP BY cap->>'name'
ORDER BY cap->>'name'
LIMIT 10000
