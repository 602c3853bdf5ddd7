-- Healthy, uncordoned controllers with a recent heartbeat whose workers serve the capability,
-- one row per version they serve (the caller matches the version range); least busy first,
-- least recently chosen first on ties, with how busy each is.
-- $1 capability name, $2 heartbeat freshness in seconds
SELECT c.id::text, c.endpoint, c.name, COALESCE(cap->>'version', ''),
       COALESCE((c.load->>'active_invokes')::integer, 0)
FROM controllers c, jsonb_array_elements(c.capabilities) cap
WHERE c.status = 'healthy' AND NOT c.cordoned
  AND c.last_heartbeat > now() - make_interval(secs => $2)
  AND cap->>'name' = $1
ORDER BY COALESCE((c.load->>'active_invokes')::integer, 0), c.last_selected_at NULLS FIRST, c.id
LIMIT 1000
