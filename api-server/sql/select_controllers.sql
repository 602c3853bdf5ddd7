-- Controllers ordered by name, keyset-paged. $1 status or '', $2 name cursor ('' = first page),
-- $3 limit, $4 id or '' (one controller), $5 heartbeat freshness in seconds
SELECT id::text, name, type, endpoint, status, labels::text, capacity::text, load::text,
       cordoned, skills::text, capabilities::text,
       coalesce(extract(epoch FROM last_heartbeat)::float8, 0),
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM unreachable_since)::float8, 0), unreachable_reason,
       coalesce(last_heartbeat + make_interval(secs => $5) > now(), false)
FROM controllers
WHERE ($1 = '' OR status = $1)
  AND ($2 = '' OR name > $2)
  AND ($4 = '' OR id::text = $4)
ORDER BY name
LIMIT $3
