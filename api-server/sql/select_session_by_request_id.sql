-- $1 owner, $2 request_id
SELECT id::text FROM sessions WHERE owner = $1 AND request_id = $2
