-- Makes the replicas reserving GPUs on one controller (and cordoning it) take turns until the
-- transaction ends, so no two promise the same GPUs and no reservation lands after a cordon
-- returns. A transaction-scoped advisory lock keyed on the controller id, not a lock on its
-- row: heartbeats and health checks update that row, and a burst of placements once queued
-- them long enough for the controller to look stale and drop out of placement mid-burst.
-- The key space (two int4 keys, 0x67616e74 "gant" first) is apart from the single-key locks
-- of migrations and the health check leader; two ids sharing a hash only take turns needlessly.
-- $1 controller id
SELECT pg_advisory_xact_lock(1734438516, hashtext($1::uuid::text))
