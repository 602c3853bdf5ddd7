-- Highest value first.
SELECT name, value, preemptible, min_runtime_seconds, is_default, extract(epoch FROM created_at)::float8
FROM priority_classes ORDER BY value DESC, name
