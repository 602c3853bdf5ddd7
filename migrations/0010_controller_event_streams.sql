-- One event route (issue "The control plane at the disk's pace", item 4): a controller reports
-- every session phase change once, numbered within a stream that is new each time the
-- controller process starts. The API server records here, in the transaction that applies a
-- part of the stream, the last sequence it applied, so a part sent again applies nothing twice
-- and the controller resends from the first event not acknowledged. Its own table, not columns
-- of controllers: the heartbeats' batched writes to that row never wait on an event batch.
CREATE TABLE controller_event_streams (
  controller_id    uuid PRIMARY KEY REFERENCES controllers (id) ON DELETE CASCADE,
  stream_id        text NOT NULL,
  applied_through  bigint NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
