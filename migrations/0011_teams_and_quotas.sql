-- Teams and quotas (issue "Sharing a GPU fleet fairly", item 1). A team groups principals: an
-- admin assigns one (SetPrincipalTeam, or CreateApiKey's team); a principal with none is a team
-- of one, named after the principal ("user/alice"). A session is charged to its owner's team as
-- of its create, recorded with what it holds against a quota: the GPU model (the one it asked
-- for, or its controller's only one) and the GPU memory (its GPUs times its controller's
-- largest), so a quota's use is a sum over the team's live sessions, read under the team's
-- lock in the transaction that reserves the GPUs.
CREATE TABLE principal_teams (
  principal   text PRIMARY KEY,
  team        text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX principal_teams_team ON principal_teams (team);

-- 0 means no limit; max_gpus_by_model maps a GPU model (matched as a case-insensitive
-- substring of the model a session holds, as placement matches it) to its limit.
CREATE TABLE quotas (
  team                  text PRIMARY KEY,
  max_gpus              integer NOT NULL DEFAULT 0 CHECK (max_gpus >= 0),
  max_sessions          integer NOT NULL DEFAULT 0 CHECK (max_sessions >= 0),
  max_gpus_by_model     jsonb NOT NULL DEFAULT '{}',
  max_gpu_memory_bytes  bigint NOT NULL DEFAULT 0 CHECK (max_gpu_memory_bytes >= 0),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Sessions created before teams existed belong to their owner's team of one.
ALTER TABLE sessions ADD COLUMN team text;
UPDATE sessions SET team = owner WHERE team IS NULL;
ALTER TABLE sessions ALTER COLUMN team SET NOT NULL;
-- A row written without one (by an API server of the version before, during a rolling upgrade)
-- is charged to its owner's team of one, as every row before this migration was.
CREATE FUNCTION sessions_default_team() RETURNS trigger AS $$
BEGIN
  IF NEW.team IS NULL THEN
    NEW.team := NEW.owner;
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER sessions_default_team BEFORE INSERT ON sessions
  FOR EACH ROW EXECUTE FUNCTION sessions_default_team();
ALTER TABLE sessions ADD COLUMN gpu_model text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN gpu_memory_bytes bigint NOT NULL DEFAULT 0;
CREATE INDEX sessions_team_live ON sessions (team) WHERE phase NOT IN ('TERMINATED', 'FAILED');
