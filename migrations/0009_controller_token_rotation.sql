-- A rotated controller token is handed to the running controller, which switches at once; the
-- one it replaces keeps working for a short grace, so heartbeats already on their way are not
-- refused (issue "Sick dependencies": rotation does what it says).
ALTER TABLE controller_tokens
  ADD COLUMN previous_token_sha256 text,
  ADD COLUMN previous_valid_until timestamptz;
