-- What a Run was sent with, and what the relay still has to find out about it.

-- The callbackUrl a Run actually carried, written in the same statement that marks the Run as
-- started (before it leaves): reconciliation searches Wiro for exactly this string, whatever
-- RELAY_SECRET or RELAY_PUBLIC_URL say later, and a callback presenting it is accepted after a
-- secret rotation.
ALTER TABLE tasks ADD COLUMN wiro_callback_url TEXT;
-- Where the current Task/List scan for an unanswered Run has got to (an offset into Wiro's list,
-- newest first): a scan that needs many pages resumes across passes instead of starting over.
ALTER TABLE tasks ADD COLUMN reconcile_offset INTEGER NOT NULL DEFAULT 0;
-- Set when reconciliation could not decide within RELAY_RECONCILE_TIMEOUT_SECONDS: the task is shown
-- as needing attention and alerted on; no Run is sent again while it may exist at Wiro.
ALTER TABLE tasks ADD COLUMN run_unresolved_at REAL;
-- 1 while a queued task waits for a Wiro slot (Run refused with code 96): a task at Wiro that ends
-- releases the oldest such task at once instead of leaving the slot idle for its backoff.
ALTER TABLE tasks ADD COLUMN waiting_for_slot INTEGER NOT NULL DEFAULT 0;
-- What the task's callback URL has cost: bodies are kept up to a bound per task, the rest counted.
ALTER TABLE tasks ADD COLUMN callbacks_kept INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN callback_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN callbacks_dropped INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tasks_slot_wait ON tasks (created_at, id)
    WHERE status = 'queued' AND waiting_for_slot = 1;
