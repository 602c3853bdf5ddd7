-- Locks a controller row for the rest of the transaction, if it may still take sessions:
-- every replica reserving GPUs on it queues here, so no two promise the same GPUs.
-- $1 id
SELECT gpus_total FROM controllers
WHERE id = $1::uuid AND status = 'healthy' AND NOT cordoned
FOR UPDATE
