-- GPUs held on a controller: every session placed there that has not ended holds its GPUs,
-- from the moment it is SCHEDULED (the reservation) until it is TERMINATED or FAILED.
-- $1 controller id
SELECT COALESCE(sum(gpu_count), 0)::integer FROM sessions
WHERE controller_id = $1::uuid AND phase NOT IN ('TERMINATED', 'FAILED')
