-- Removes a session no client was ever told about (placement refused everywhere), with its
-- events; its reservation goes with it. Only while still SCHEDULED.
-- $1 id
DELETE FROM sessions WHERE id = $1::uuid AND phase = 'SCHEDULED'
