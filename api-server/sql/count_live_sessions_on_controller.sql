-- Sessions not yet TERMINATED or FAILED on a controller. $1 id
SELECT count(*) FROM sessions
WHERE controller_id = $1::uuid AND phase NOT IN ('TERMINATED', 'FAILED')
