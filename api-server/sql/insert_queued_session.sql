-- A create that did not fit, queued: PENDING, holding nothing, until `queued_until`, with the
-- placement it asked for, and its first event. A request_id its owner has used already
-- inserts nothing and returns no row. Returns the columns of select_session.sql.
-- $1 owner, $2 request_id or '', $3 template_id or '', $4 spec json, $5 labels json,
-- $6 gpu_count, $7 team, $8 priority, $9 queue timeout in seconds, $10 placement json,
-- $11 message (why it queued), $12 the controller it is nominated to by its preemption, or ''
WITH s AS (
  INSERT INTO sessions (owner, request_id, template_id, spec, labels, gpu_count, phase, message, team, priority,
                        queued_until, queue_placement, nominated_controller_id)
  VALUES ($1, NULLIF($2, ''), (SELECT t.id FROM templates t WHERE t.id = $3), $4::jsonb, $5::jsonb, $6, 'PENDING',
          $11, $7, $8, now() + make_interval(secs => $9), $10::jsonb, NULLIF($12, '')::uuid)
  ON CONFLICT (owner, request_id) WHERE request_id IS NOT NULL DO NOTHING
  RETURNING *
), events AS (
  INSERT INTO session_events (session_id, from_phase, to_phase, message)
  SELECT s.id, NULL, 'PENDING', 'created; ' || $11 FROM s
)
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
FROM s
