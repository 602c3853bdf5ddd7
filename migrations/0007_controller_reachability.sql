-- Reachable is not the same as heartbeating (issue "Sick dependencies"): a controller whose
-- heartbeats get out but which the API server cannot call (a one-way partition, a wrong
-- advertised address, a wedged service) must not look healthy. Heartbeats no longer reset the
-- health-check misses; these record since when the health checks have failed, and how.
ALTER TABLE controllers
  ADD COLUMN unreachable_since timestamptz,
  ADD COLUMN unreachable_reason text NOT NULL DEFAULT '';
