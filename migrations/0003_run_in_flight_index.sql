-- The submitter's in-flight count: queued tasks whose Run may have reached Wiro (run_started_at set).
-- There are only ever a few, so counting them reads a handful of index entries however many tasks
-- wait in the queue. The status leads the columns so that the planner, which has no statistics,
-- prefers this index to tasks_by_status_created (status=?), which would visit every queued task.
CREATE INDEX tasks_run_in_flight ON tasks (status, run_started_at)
    WHERE status = 'queued' AND run_started_at IS NOT NULL;
