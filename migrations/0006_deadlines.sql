-- A task's limits, kept apart: the time it may wait queued (from creation), the time it may run at
-- Wiro (from submission), and the caller's Cancel-After (from creation, over both). deadline_at is
-- the earliest of those that apply where the task is now (+inf when none does), so one index still
-- finds every task past its limit.

ALTER TABLE tasks ADD COLUMN queue_deadline_at REAL;                         -- NULL: no queue timeout
ALTER TABLE tasks ADD COLUMN cancel_after_at REAL;                           -- NULL: no Cancel-After
ALTER TABLE tasks ADD COLUMN run_timeout_seconds REAL NOT NULL DEFAULT 14400; -- counted from submitted_at

-- Tasks accepted before: their one deadline counted from creation. Its length becomes their run
-- timeout, and a task still queued keeps the deadline it was given as its queue deadline.
UPDATE tasks SET run_timeout_seconds = MAX(deadline_at - created_at, 0);
UPDATE tasks SET queue_deadline_at = deadline_at WHERE status = 'queued';
