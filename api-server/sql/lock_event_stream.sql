-- Takes a controller's event-stream row for this transaction (creating it on first use) and
-- returns what it last recorded: concurrent parts of one controller's stream (a retry reaching
-- another replica) are applied one after the other, never interleaved.
-- $1 controller id, $2 stream id (recorded only for a new row)
INSERT INTO controller_event_streams (controller_id, stream_id, applied_through)
VALUES ($1::uuid, $2, 0)
ON CONFLICT (controller_id) DO UPDATE SET controller_id = excluded.controller_id
RETURNING stream_id, applied_through
