-- Waits for reservations in flight on the controller (lock_controller_for_reservation.sql's
-- lock), so once a cordon returns no new session lands there. $1 id, $2 cordoned
WITH turn AS (SELECT pg_advisory_xact_lock(1734438516, hashtext($1::uuid::text)))
UPDATE controllers SET cordoned = $2, updated_at = now() FROM turn WHERE id = $1::uuid RETURNING id
