-- Of the sessions a controller says it holds, those PostgreSQL does not want on it: unknown,
-- ended, or placed on another controller. $1 the controller's id; $2 a JSON array of session
-- ids, each a UUID (checked by the caller, so the lookup uses the primary key).
SELECT held.id
FROM jsonb_array_elements_text($2::jsonb) AS held(id)
WHERE NOT EXISTS (
  SELECT 1 FROM sessions s
  WHERE s.id = held.id::uuid AND s.controller_id = $1::uuid AND s.phase NOT IN ('TERMINATED', 'FAILED'))
