-- One session of a reservation batch, SCHEDULED on the controller whose reservation lock the
-- transaction holds, with its first two events, in one round trip. A request_id its owner has
-- used already inserts nothing and returns no row, without failing the batch's transaction.
-- A template deleted since the request was checked leaves template_id empty (as deleting it
-- later would) instead of failing the batch on the foreign key.
-- Returns the columns of select_session.sql.
-- $1 owner, $2 request_id or '', $3 template_id or '', $4 spec json, $5 labels json,
-- $6 gpu_count, $7 controller id, $8 message (the SCHEDULED event's too), $9 team charged,
-- $10 GPU model charged, $11 GPU memory charged, $12 priority (its class's value)
WITH s AS (
  INSERT INTO sessions (owner, request_id, template_id, spec, labels, gpu_count, phase, controller_id, message,
                        team, gpu_model, gpu_memory_bytes, priority, placed_at)
  VALUES ($1, NULLIF($2, ''), (SELECT t.id FROM templates t WHERE t.id = $3), $4::jsonb, $5::jsonb, $6,
          'SCHEDULED', $7::uuid, $8, $9, $10, $11, $12, now())
  ON CONFLICT (owner, request_id) WHERE request_id IS NOT NULL DO NOTHING
  RETURNING *
), events AS (
  INSERT INTO session_events (session_id, from_phase, to_phase, message)
  SELECT s.id, e.from_phase, e.to_phase, e.message
  FROM s, (VALUES (1, NULL, 'PENDING', 'created'), (2, 'PENDING', 'SCHEDULED', $8)) e (n, from_phase, to_phase, message)
  ORDER BY e.n
)
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text
FROM s
