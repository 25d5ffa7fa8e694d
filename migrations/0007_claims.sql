-- Who has a task in hand, and until when: the submitter (a queued task to send or reconcile), the
-- poller (a look at Wiro) or a deadline's expiry. Work is taken by claiming it here, never only in
-- memory: two processes never take the same task, and a dead process's claims lapse and are taken
-- over. Only tasks in hand are in the index, so counting them costs a handful of entries.
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
ALTER TABLE tasks ADD COLUMN claimed_until REAL;
CREATE INDEX tasks_claimed ON tasks (claimed_until) WHERE claimed_by IS NOT NULL;
-- Deliveries in hand (migration 0005 claims them), by the same rule: counting a subscription's claims
-- across every process is how its concurrency limit holds for all of them.
CREATE INDEX deliveries_claimed ON deliveries (claimed_until) WHERE claimed_by IS NOT NULL;
