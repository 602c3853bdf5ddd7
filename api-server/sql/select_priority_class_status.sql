-- Per priority class ('' for sessions of none): how many sessions are queued, how long its
-- oldest queued one has waited (seconds), and how many preempted sessions PostgreSQL keeps
-- (ended sessions are pruned after their retention).
SELECT coalesce(spec->>'priority_class', ''),
       (count(*) FILTER (WHERE phase = 'PENDING' AND queued_until IS NOT NULL))::integer,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE phase = 'PENDING' AND queued_until IS NOT NULL)),
                0)::float8,
       (count(*) FILTER (WHERE preempted_by IS NOT NULL))::integer
FROM sessions
WHERE (phase = 'PENDING' AND queued_until IS NOT NULL) OR preempted_by IS NOT NULL
GROUP BY 1
ORDER BY 1
