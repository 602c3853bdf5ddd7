-- Makes the creates charged to one team take turns until the transaction ends, on every
-- replica and whichever controllers they reserve on, so that what the team's live sessions
-- hold, read after it, stays true until the commit: no two creates both fit the last of a
-- quota. Taken after the controller's reservation lock, several in ascending key order, so no
-- two transactions wait for each other. The key (0x67616e75 "ganu", and a hash of the team
-- computed by the caller) is apart from the controllers' reservation locks.
-- $1 the team's key
SELECT pg_advisory_xact_lock(1734438517, $1::int4)
