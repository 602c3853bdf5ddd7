-- Priority classes (issue "Sharing a GPU fleet fairly", item 3's names): a session names one in
-- its spec (or gets the default class, if one is marked so) and carries the class's value from
-- its create, so changing or deleting a class later changes no session's priority.
CREATE TABLE priority_classes (
  name                 text PRIMARY KEY,
  value                integer NOT NULL,
  preemptible          boolean NOT NULL DEFAULT false,
  min_runtime_seconds  bigint NOT NULL DEFAULT 0 CHECK (min_runtime_seconds >= 0),
  is_default           boolean NOT NULL DEFAULT false,
  created_at           timestamptz NOT NULL DEFAULT now()
);
-- At most one default.
CREATE UNIQUE INDEX priority_classes_one_default ON priority_classes (is_default) WHERE is_default;

ALTER TABLE sessions ADD COLUMN priority integer NOT NULL DEFAULT 0;
