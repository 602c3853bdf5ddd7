-- $1 id or '' (all)
SELECT id, description, preferred_controller_type, spec::text,
       extract(epoch FROM created_at)::bigint
FROM templates WHERE ($1 = '' OR id = $1) ORDER BY id LIMIT 1000
