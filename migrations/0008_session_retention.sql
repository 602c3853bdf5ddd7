-- Ended sessions are pruned after a retention (issue "Sick dependencies": nothing grows
-- without a bound). The pruner finds the oldest ended ones through this index, a few hundred
-- at a time, without reading the live ones.
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
