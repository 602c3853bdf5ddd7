-- No row when the name is taken. A second default fails on priority_classes_one_default.
-- $1 name, $2 value, $3 preemptible, $4 min_runtime seconds, $5 is_default
INSERT INTO priority_classes (name, value, preemptible, min_runtime_seconds, is_default)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO NOTHING
RETURNING name, value, preemptible, min_runtime_seconds, is_default, extract(epoch FROM created_at)::float8
