-- $1 id
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
FROM sessions WHERE id = $1::uuid
