-- The heartbeats of many controllers in one statement: one commit for all that arrived while
-- the last one was being written. Rows are locked in id order (as record_health_checks_ok.sql
-- does) so two such statements never deadlock. $1 a JSON array of {id, capacity, load,
-- gpus_total, gpus_free, max_free_gpus_per_worker, max_gpu_memory_bytes, active_sessions,
-- skills, capabilities}, capacity, load and capabilities as protobuf JSON. Returns the id and
-- cordoned flag of each controller found.
WITH beat AS (
  SELECT DISTINCT ON (id) * FROM jsonb_to_recordset($1::jsonb) AS a(
    id uuid, capacity jsonb, load jsonb, gpus_total integer, gpus_free integer,
    max_free_gpus_per_worker integer, max_gpu_memory_bytes bigint, active_sessions integer,
    skills jsonb, capabilities jsonb)
), locked AS (
  SELECT c.id FROM controllers c WHERE c.id IN (SELECT id FROM beat) ORDER BY c.id FOR UPDATE
)
UPDATE controllers c SET
  capacity = b.capacity, load = b.load, gpus_total = b.gpus_total, gpus_free = b.gpus_free,
  max_free_gpus_per_worker = b.max_free_gpus_per_worker,
  max_gpu_memory_bytes = b.max_gpu_memory_bytes, active_sessions = b.active_sessions,
  skills = b.skills, capabilities = b.capabilities,
  status = 'healthy', missed_health_checks = 0, last_heartbeat = now(), updated_at = now()
FROM beat b
WHERE c.id = b.id AND c.id IN (SELECT id FROM locked)
RETURNING c.id::text, c.cordoned
