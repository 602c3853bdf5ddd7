-- Queued creates (issue "Sharing a GPU fleet fairly", item 2): a create that asks to queue and
-- does not fit now is stored PENDING with the time it gives up at, and the placement it asked
-- for (controller, type, selector); the health check leader places queued sessions as room
-- frees, highest priority first, then the team that used the fewest GPU-seconds lately, then
-- the oldest. placed_at: when a session got its GPUs (its GPU-seconds count from there).
ALTER TABLE sessions ADD COLUMN queued_until timestamptz;
ALTER TABLE sessions ADD COLUMN queue_placement jsonb NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN placed_at timestamptz;
UPDATE sessions SET placed_at = created_at WHERE phase <> 'PENDING';
CREATE INDEX sessions_queued ON sessions (priority DESC, created_at) WHERE phase = 'PENDING' AND queued_until IS NOT NULL;
