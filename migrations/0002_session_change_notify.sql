-- Every change to a session is announced on channel gantry_sessions with payload
-- "<id>:<version>", so WatchSession on any API replica (each LISTENs) learns of changes made
-- through any other. The notification is sent when the transaction commits, never before.
CREATE FUNCTION gantry_notify_session_change() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('gantry_sessions', NEW.id::text || ':' || NEW.version::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_notify_change
AFTER INSERT OR UPDATE ON sessions
FOR EACH ROW EXECUTE FUNCTION gantry_notify_session_change();
