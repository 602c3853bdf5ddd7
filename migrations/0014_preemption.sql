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
