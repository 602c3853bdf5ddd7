-- Live sessions their controller's heartbeats have stopped listing, and since when: one that
-- stays unlisted past the grace is lost (FAILED). A table of its own, not a column, so that
-- noting absence does not touch the session row (whose every update is a watch notification).
CREATE TABLE unheld_sessions (
  session_id  uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
  since       timestamptz NOT NULL DEFAULT now()
);
