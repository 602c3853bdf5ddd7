-- The sessions preempted for a session that have not ended yet, with whether their stop has
-- gone unanswered for $2 seconds (the replica that was stopping them died first, say: the
-- stop is asked again; a controller's DeleteSession is idempotent).
-- Returns the columns of select_session.sql, then that flag.
-- $1 the preemptor's id, $2 seconds
SELECT id::text, owner, coalesce(request_id, ''), coalesce(template_id, ''),
       coalesce(controller_id::text, ''), worker_id, node_id, phase, spec::text,
       gpu_uuids::text, url, message, version,
       extract(epoch FROM created_at)::float8, extract(epoch FROM updated_at)::float8,
       coalesce(extract(epoch FROM ended_at)::float8, 0), conditions::text,
       updated_at < now() - make_interval(secs => $2)
FROM sessions
WHERE preempted_by = $1::uuid AND phase NOT IN ('TERMINATED', 'FAILED')
