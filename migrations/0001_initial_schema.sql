-- Gantry's durable state. Applied once by gantry-api's migration runner (under an advisory
-- lock, recorded in schema_migrations). Never edit an applied migration: add a new one.

CREATE TABLE controllers (
  id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                     text NOT NULL UNIQUE,
  type                     text NOT NULL,
  endpoint                 text NOT NULL,
  status                   text NOT NULL DEFAULT 'healthy'
                           CHECK (status IN ('healthy', 'unhealthy', 'offline')),
  labels                   jsonb NOT NULL DEFAULT '{}',
  skills                   jsonb NOT NULL DEFAULT '[]',
  capabilities             jsonb NOT NULL DEFAULT '[]',
  -- The last ControllerCapacity and ControllerLoad reported, as protobuf JSON.
  capacity                 jsonb NOT NULL DEFAULT '{}',
  load                     jsonb NOT NULL DEFAULT '{}',
  -- Denormalised from capacity/load so selection can filter and sort in SQL.
  gpus_total               integer NOT NULL DEFAULT 0,
  gpus_free                integer NOT NULL DEFAULT 0,
  max_free_gpus_per_worker integer NOT NULL DEFAULT 0,
  max_gpu_memory_bytes     bigint NOT NULL DEFAULT 0,
  active_sessions          integer NOT NULL DEFAULT 0,
  cordoned                 boolean NOT NULL DEFAULT false,
  missed_health_checks     integer NOT NULL DEFAULT 0,
  last_heartbeat           timestamptz,
  -- Round-robin among equally loaded controllers: the least recently chosen goes first.
  last_selected_at         timestamptz,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX controllers_selectable ON controllers (status, cordoned, active_sessions);

-- Per-controller tokens, stored only as SHA-256. One live token per controller.
CREATE TABLE controller_tokens (
  controller_id uuid PRIMARY KEY REFERENCES controllers (id) ON DELETE CASCADE,
  token_sha256  text NOT NULL,
  expires_at    timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE templates (
  id                        text PRIMARY KEY,
  description               text NOT NULL DEFAULT '',
  preferred_controller_type text NOT NULL DEFAULT '',
  -- SessionSpec as protobuf JSON.
  spec                      jsonb NOT NULL,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner         text NOT NULL,
  -- The client's idempotency key; unique per owner when given.
  request_id    text,
  template_id   text REFERENCES templates (id) ON DELETE SET NULL,
  controller_id uuid REFERENCES controllers (id) ON DELETE SET NULL,
  worker_id     text NOT NULL DEFAULT '',
  node_id       text NOT NULL DEFAULT '',
  phase         text NOT NULL CHECK (phase IN ('PENDING', 'SCHEDULED', 'STARTING', 'RUNNING',
                                               'HIBERNATED', 'TERMINATING', 'TERMINATED',
                                               'FAILED')),
  -- SessionSpec as protobuf JSON; labels copied out for filtering.
  spec          jsonb NOT NULL,
  labels        jsonb NOT NULL DEFAULT '{}',
  gpu_count     integer NOT NULL DEFAULT 0,
  gpu_uuids     jsonb NOT NULL DEFAULT '[]',
  url           text NOT NULL DEFAULT '',
  message       text NOT NULL DEFAULT '',
  -- Incremented on every change: optimistic concurrency.
  version       bigint NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  ended_at      timestamptz
);
CREATE UNIQUE INDEX sessions_owner_request_id ON sessions (owner, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX sessions_owner_created ON sessions (owner, created_at DESC, id DESC);
CREATE INDEX sessions_created ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_controller_live ON sessions (controller_id)
  WHERE phase NOT IN ('TERMINATED', 'FAILED');

-- Every phase change, in order.
CREATE TABLE session_events (
  id         bigserial PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  from_phase text,
  to_phase   text NOT NULL,
  message    text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_events_session ON session_events (session_id, id);

-- API keys, stored only as SHA-256.
CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  key_sha256   text NOT NULL UNIQUE,
  principal    text NOT NULL,
  role         text NOT NULL CHECK (role IN ('user', 'admin')),
  revoked      boolean NOT NULL DEFAULT false,
  expires_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
