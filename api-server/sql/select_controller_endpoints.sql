-- Every controller that is not offline, for fan-out. $1 id or '' (all)
SELECT id::text, endpoint, name FROM controllers
WHERE status <> 'offline' AND ($1 = '' OR id::text = $1)
ORDER BY name
