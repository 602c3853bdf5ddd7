-- The heartbeats of many controllers in one statement: one round trip and one commit for all
-- that arrived while the last one was being written, each stored, checked and reconciled.
-- $1 a JSON array, one element per heartbeat: {id, token_sha256, name, capacity, load, gpus_total,
-- gpus_free, max_free_gpus_per_worker, max_gpu_memory_bytes, active_sessions, skills,
-- capabilities, held, held_complete, unheld_grace_s, recent_s}; capacity, load and capabilities
-- as protobuf JSON, held the session ids it holds (UUIDs, checked by the caller), name the one
-- in the caller's certificate.
-- Returns, for each heartbeat accepted: the controller's id, the token hash, the name, its cordoned flag,
-- the held sessions PostgreSQL does not want on it, and the sessions it has lost (both
-- comma-separated, or NULL).
WITH beat AS (
  SELECT DISTINCT ON (id, token_sha256, name) * FROM jsonb_to_recordset($1::jsonb) AS a(
    id uuid, token_sha256 text, name text, capacity jsonb, load jsonb, gpus_total integer, gpus_free integer,
    max_free_gpus_per_worker integer, max_gpu_memory_bytes bigint, active_sessions integer,
    skills jsonb, capabilities jsonb, held jsonb, held_complete boolean,
    unheld_grace_s double precision, recent_s double precision)
), accepted AS (
  -- Only a heartbeat that carries its controller's live token, from that controller's
  -- certificate. Compared by hash, so the comparison's timing tells an attacker at most how
  -- much of a SHA-256 they guessed, which brings them no nearer a token that has it. A
  -- controller has one token and one name, so at most one of its heartbeats here is accepted.
  SELECT b.* FROM beat b JOIN controller_tokens t ON t.controller_id = b.id
  JOIN controllers n ON n.id = b.id AND n.name = b.name
  WHERE (t.token_sha256 = b.token_sha256 AND t.expires_at > now())
     -- The token rotated away, during its grace (upsert_controller_token.sql).
     OR (t.previous_token_sha256 = b.token_sha256 AND t.previous_valid_until > now())
), locked AS (
  -- In id order (as record_health_checks_ok.sql), so two such statements never deadlock. NO KEY
  -- UPDATE, as the UPDATE below takes anyway: sessions being inserted for the controller hold a
  -- key-share lock on its row (their foreign key), which a full FOR UPDATE would wait for.
  SELECT c.id FROM controllers c WHERE c.id IN (SELECT id FROM accepted) ORDER BY c.id FOR NO KEY UPDATE
), stored AS (
  UPDATE controllers c SET
    capacity = b.capacity, load = b.load, gpus_total = b.gpus_total, gpus_free = b.gpus_free,
    max_free_gpus_per_worker = b.max_free_gpus_per_worker,
    max_gpu_memory_bytes = b.max_gpu_memory_bytes, active_sessions = b.active_sessions,
    skills = b.skills, capabilities = b.capabilities,
    -- Heartbeats say the controller is alive, not that it can be called: only a health check
    -- (record_health_checks_ok.sql) makes it healthy again. One marked offline is alive after
    -- all: unhealthy until the next check answers.
    status = CASE WHEN c.status = 'offline' THEN 'unhealthy' ELSE c.status END,
    last_heartbeat = now(), updated_at = now()
  FROM accepted b
  WHERE c.id = b.id AND c.id IN (SELECT id FROM locked)
  RETURNING c.id, b.token_sha256, b.name, c.cordoned
), held AS (
  SELECT b.id AS controller_id, h.sent, h.sent::uuid AS session_id
  FROM accepted b CROSS JOIN LATERAL jsonb_array_elements_text(b.held) AS h(sent)
), unwanted AS (
  -- Held, but unknown, ended, or placed on another controller: to be stopped.
  SELECT h.controller_id, h.sent FROM held h
  WHERE NOT EXISTS (
    SELECT 1 FROM sessions s
    WHERE s.id = h.session_id AND s.controller_id = h.controller_id AND s.phase NOT IN ('TERMINATED', 'FAILED'))
), missing AS (
  -- The reverse, where the heartbeat lists everything its controller holds: live sessions it
  -- left out. One changed within recent_s is not counted: it may have been placed after the
  -- controller took the snapshot this heartbeat carries.
  SELECT s.id, s.controller_id, b.unheld_grace_s
  FROM accepted b JOIN sessions s ON s.controller_id = b.id
  WHERE b.held_complete
    AND s.phase IN ('STARTING', 'RUNNING', 'HIBERNATED', 'TERMINATING')
    AND s.updated_at < now() - make_interval(secs => b.recent_s)
    AND NOT EXISTS (SELECT 1 FROM held h WHERE h.controller_id = b.id AND h.session_id = s.id)
), forgotten AS (
  -- Listed again (or no longer live): absence starts over.
  DELETE FROM unheld_sessions u USING sessions s, accepted b
  WHERE u.session_id = s.id AND s.controller_id = b.id AND b.held_complete
    AND u.session_id NOT IN (SELECT id FROM missing)
), noted AS (
  INSERT INTO unheld_sessions (session_id) SELECT id FROM missing ON CONFLICT DO NOTHING
)
-- unheld_sessions as it was before this statement: a session first noted now is not yet lost.
SELECT st.id::text, st.token_sha256, st.name, st.cordoned,
  (SELECT string_agg(w.sent, ',') FROM unwanted w WHERE w.controller_id = st.id),
  (SELECT string_agg(u.session_id::text, ',') FROM unheld_sessions u JOIN missing m ON m.id = u.session_id
   WHERE m.controller_id = st.id AND u.since < now() - make_interval(secs => m.unheld_grace_s))
FROM stored st
