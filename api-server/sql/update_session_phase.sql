-- Moves a session to a new phase if it is still at the expected version, bumping the version,
-- and returns it as select_session.sql does (no second read).
-- Empty strings / empty JSON leave placement fields unchanged. The first RUNNING sets started_at.
-- $1 id, $2 expected version, $3 new phase, $4 message, $5 controller_id or '',
-- $6 worker_id or '', $7 node_id or '', $8 gpu_uuids json or '', $9 url or '', $10 ended (bool)
UPDATE sessions SET
  phase = $3, message = $4,
  controller_id = coalesce(NULLIF($5, '')::uuid, controller_id),
  worker_id = coalesce(NULLIF($6, ''), worker_id),
  node_id = coalesce(NULLIF($7, ''), node_id),
  gpu_uuids = coalesce(NULLIF($8, '')::jsonb, gpu_uuids),
  url = coalesce(NULLIF($9, ''), url),
  ended_at = CASE WHEN $10 THEN now() ELSE ended_at END,
  started_at = CASE WHEN $3 = 'RUNNING' THEN coalesce(started_at, now()) ELSE started_at END,
  version = version + 1, updated_at = now()
WHERE id = $1::uuid AND version = $2
RETURNING id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
          coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
          gpu_uuids::text, url, message, version,
          extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
          coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
