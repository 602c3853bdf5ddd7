-- The heartbeats of many controllers in one statement: one round trip and one commit for all
-- that arrived while the last one was being written. A heartbeat is written only if it carries
-- its controller's live token (by hash, so the comparison's timing can tell an attacker at most
-- how much of a SHA-256 they guessed, which brings them no nearer a token that has it). Rows
-- are locked in id order (as record_health_checks_ok.sql does) so two such statements never
-- deadlock. $1 a JSON array of {id, token_sha256, capacity, load, gpus_total, gpus_free,
-- max_free_gpus_per_worker, max_gpu_memory_bytes, active_sessions, skills, capabilities},
-- capacity, load and capabilities as protobuf JSON. Returns the id, token hash and cordoned
-- flag of each heartbeat accepted.
WITH beat AS (
  SELECT DISTINCT ON (id, token_sha256) * FROM jsonb_to_recordset($1::jsonb) AS a(
    id uuid, token_sha256 text, capacity jsonb, load jsonb, gpus_total integer, gpus_free integer,
    max_free_gpus_per_worker integer, max_gpu_memory_bytes bigint, active_sessions integer,
    skills jsonb, capabilities jsonb)
), accepted AS (
  -- A controller has one token, so at most one of its heartbeats here is accepted.
  SELECT b.* FROM beat b JOIN controller_tokens t ON t.controller_id = b.id
  WHERE t.token_sha256 = b.token_sha256 AND t.expires_at > now()
), locked AS (
  SELECT c.id FROM controllers c WHERE c.id IN (SELECT id FROM accepted) ORDER BY c.id FOR UPDATE
)
UPDATE controllers c SET
  capacity = b.capacity, load = b.load, gpus_total = b.gpus_total, gpus_free = b.gpus_free,
  max_free_gpus_per_worker = b.max_free_gpus_per_worker,
  max_gpu_memory_bytes = b.max_gpu_memory_bytes, active_sessions = b.active_sessions,
  skills = b.skills, capabilities = b.capabilities,
  status = 'healthy', missed_health_checks = 0, last_heartbeat = now(), updated_at = now()
FROM accepted b
WHERE c.id = b.id AND c.id IN (SELECT id FROM locked)
RETURNING c.id::text, b.token_sha256, c.cordoned
