-- The relay's core: tasks, what was seen of them, their raw callbacks and their events.
-- Times are Unix seconds (REAL, UTC). Decimal money is TEXT so no cent is lost to floating point.

CREATE TABLE relay_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,            -- task_<ULID>: sorts by creation time
    status            TEXT NOT NULL CHECK (status IN
                        ('queued', 'submitted', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    model             TEXT NOT NULL,
    input_json        TEXT NOT NULL,
    metadata_json     TEXT NOT NULL DEFAULT '{}',
    webhook_url       TEXT,
    idempotency_key   TEXT UNIQUE,
    request_hash      TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    deadline_at       REAL NOT NULL,
    -- Wiro's side
    wiro_task_id      TEXT,
    wiro_socket_token TEXT,
    wiro_status       TEXT,
    outputs_json      TEXT NOT NULL DEFAULT '[]',
    cost_usd          TEXT,
    elapsed_seconds   REAL,
    error_json        TEXT,
    submitted_at      REAL,
    completed_at      REAL,
    -- the submitter's schedule (queued tasks)
    next_attempt_at   REAL,
    submit_attempts   INTEGER NOT NULL DEFAULT 0,
    run_started_at    REAL,                        -- a Run may have left: reconcile before another
    reconcile_misses  INTEGER NOT NULL DEFAULT 0,
    -- the poller's schedule (tasks at Wiro)
    poll_at           REAL,
    poll_attempts     INTEGER NOT NULL DEFAULT 0,
    last_callback_at  REAL,
    last_detail_at    REAL,                        -- when the last Task/Detail for it started
    cancel_requested  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- GET /v1/tasks, newest first, optionally by status and a created_at window; the id breaks ties.
CREATE INDEX tasks_by_created ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_by_status_created ON tasks (status, created_at DESC, id DESC);
CREATE INDEX tasks_by_model_created ON tasks (model, created_at DESC, id DESC);
-- The submitter: queued tasks that are due.
CREATE INDEX tasks_submit_due ON tasks (next_attempt_at) WHERE status = 'queued';
-- The poller: tasks at Wiro whose next look is due, and the deadline sweep.
CREATE INDEX tasks_poll_due ON tasks (poll_at) WHERE status IN ('submitted', 'running');
CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE status IN ('queued', 'submitted', 'running');
-- Summary: cost and counts over a completion window.
CREATE INDEX tasks_by_completed ON tasks (completed_at) WHERE completed_at IS NOT NULL;

-- metadata.<key>=<value> filters: one row per pair, so the filter is an index lookup.
CREATE TABLE task_metadata (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (key, value, task_id)
) STRICT, WITHOUT ROWID;

-- Everything seen of a task: every Wiro status (with its source) and every relay state change.
CREATE TABLE task_timeline (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    source       TEXT NOT NULL,
    wiro_status  TEXT,
    relay_status TEXT,
    note         TEXT
) STRICT;
CREATE INDEX task_timeline_by_task ON task_timeline (task_id, id);

-- Wiro's callbacks exactly as received; a hint to confirm, never the truth.
CREATE TABLE callbacks (
    id             INTEGER PRIMARY KEY,
    task_id        TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    received_at    REAL NOT NULL,
    content_type   TEXT,
    body           BLOB NOT NULL,
    claimed_status TEXT
) STRICT;
CREATE INDEX callbacks_by_task ON callbacks (task_id, id);

-- The transactional outbox: every state change writes its event in the same transaction.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- global and increasing, never reused
    id         TEXT NOT NULL UNIQUE,               -- evt_<ULID>
    type       TEXT NOT NULL,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    data_json  TEXT NOT NULL                       -- the task as it was after the change
) STRICT;
CREATE INDEX events_by_task ON events (task_id, seq);
CREATE INDEX events_by_type ON events (type, seq);
