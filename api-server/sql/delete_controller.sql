-- $1 id. Frees its name: a join token may mint a certificate for it again.
WITH gone AS (DELETE FROM controllers WHERE id = $1::uuid RETURNING id, name),
     unbound AS (DELETE FROM node_identities WHERE role = 'controller' AND name IN (SELECT name FROM gone))
SELECT id FROM gone
