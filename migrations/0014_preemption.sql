-- Preemption (issue "Sharing a GPU fleet fairly", item 3), the conditions a session shows, and
-- weights on the queue's fair share.
--
-- conditions: a JSON array of gantry.v1.Condition (protobuf JSON); "Preempted" is stored here.
-- started_at: when it first became RUNNING, the clock its class's min_runtime runs on, and
-- what "most recently started" orders victims by.
-- preempted_by: for a victim, the session it makes room for; that session does not preempt
-- again while one of its victims is still stopping.
-- nominated_controller_id: for a session queued behind its victims, the controller they are
-- stopping on; its GPUs count as reserved there (select_controller_room.sql) for every other
-- session, so nothing else takes the room the preemption made.
ALTER TABLE sessions ADD COLUMN conditions jsonb NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN started_at timestamptz;
ALTER TABLE sessions ADD COLUMN preempted_by uuid;
ALTER TABLE sessions ADD COLUMN nominated_controller_id uuid;
UPDATE sessions SET started_at = placed_at WHERE phase IN ('RUNNING', 'HIBERNATED');
CREATE INDEX sessions_preempted_by ON sessions (preempted_by) WHERE preempted_by IS NOT NULL;
CREATE INDEX sessions_nominated ON sessions (nominated_controller_id) WHERE phase = 'PENDING' AND nominated_controller_id IS NOT NULL;
-- A team's weight in the queue's fair share (SetQuotaRequest.weight): its recent GPU-seconds are
-- divided by it when the queue orders teams.
ALTER TABLE quotas ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000);
-- Victims are looked for among running sessions of a priority below the preemptor's.
CREATE INDEX sessions_running_priority ON sessions (priority) WHERE phase IN ('RUNNING', 'HIBERNATED');

-- Each team's recent GPU-seconds (its sessions' GPUs times the time each held them within the
-- last `window_s` seconds) per unit of its weight: what orders the queue's teams among
-- sessions of one priority (select_queued_sessions.sql, select_queue_positions.sql). A team
-- that used nothing has no row (share 0).
CREATE FUNCTION queue_team_shares(window_s double precision)
RETURNS TABLE (team text, share double precision) LANGUAGE sql STABLE AS $$
  SELECT u.team, u.gpu_seconds / coalesce(q.weight, 1)
  FROM (
    SELECT s.team, sum(s.gpu_count * extract(epoch FROM
             coalesce(s.ended_at, now()) - greatest(s.placed_at, now() - make_interval(secs => window_s)))::float8)
             AS gpu_seconds
    FROM sessions s
    WHERE s.placed_at IS NOT NULL AND s.gpu_count > 0
      AND coalesce(s.ended_at, now()) > now() - make_interval(secs => window_s)
    GROUP BY s.team
  ) u LEFT JOIN quotas q ON q.team = u.team
$$;
