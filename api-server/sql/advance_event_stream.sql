-- Records the last sequence of a controller's event stream that is applied.
-- $1 controller id, $2 stream id, $3 applied through
UPDATE controller_event_streams SET stream_id = $2, applied_through = $3, updated_at = now()
WHERE controller_id = $1::uuid
