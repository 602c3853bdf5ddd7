-- Newest first, keyset-paged on (created_at, id). Same columns as select_session.sql plus the
-- cursor text.
-- $1 owner or '' (all), $2 phase or '', $3 controller id or '', $4 labels json,
-- $5 cursor created_at text or '' (first page), $6 cursor id, $7 limit
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text, created_at::text
FROM sessions
WHERE ($1 = '' OR owner = $1)
  AND ($2 = '' OR phase = $2)
  AND ($3 = '' OR controller_id::text = $3)
  AND labels @> $4::jsonb
  AND ($5 = '' OR (created_at, id) < ($5::timestamptz, NULLIF($6, '')::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $7
