-- table callbacks
CREATE TABLE callbacks (
    id             INTEGER PRIMARY KEY,
    task_id        TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    received_at    REAL NOT NULL,
    content_type   TEXT,
    body           BLOB NOT NULL,
    claimed_status TEXT
) STRICT;

-- table deliveries
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,                    -- dlv_<ULID>
    event_seq       INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    subscription_id TEXT REFERENCES subscriptions (id) ON DELETE CASCADE,  -- NULL: the task's webhook_url
    url             TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at REAL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    completed_at    REAL
, claimed_by TEXT, claimed_until REAL, last_url TEXT) STRICT;

-- table delivery_attempts
CREATE TABLE delivery_attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at               REAL NOT NULL,
    status_code      INTEGER,
    duration_ms      REAL NOT NULL,
    error            TEXT,
    response_excerpt TEXT
, url TEXT) STRICT;

-- table events
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- global and increasing, never reused
    id         TEXT NOT NULL UNIQUE,               -- evt_<ULID>
    type       TEXT NOT NULL,
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    data_json  TEXT NOT NULL                       -- the task as it was after the change
) STRICT;

-- table relay_meta
CREATE TABLE relay_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- table schema_migrations
CREATE TABLE schema_migrations ( name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at REAL NOT NULL) STRICT;

-- table subscriptions
CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,              -- sub_<ULID>
    url                  TEXT NOT NULL,
    event_types_json     TEXT NOT NULL DEFAULT '[]',     -- [] means every type
    metadata_filter_json TEXT NOT NULL DEFAULT '{}',     -- every pair must match the task's metadata
    description          TEXT NOT NULL DEFAULT '',
    enabled              INTEGER NOT NULL DEFAULT 1,
    disabled_reason      TEXT,
    secret               TEXT NOT NULL,
    previous_secret      TEXT,                           -- still signed with until it expires
    previous_expires_at  REAL,
    failing_since        REAL,                           -- first failure with no success since
    created_at           REAL NOT NULL,
    updated_at           REAL NOT NULL
) STRICT;

-- table task_metadata
CREATE TABLE task_metadata (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (key, value, task_id)
) STRICT, WITHOUT ROWID;

-- table task_timeline
CREATE TABLE task_timeline (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    source       TEXT NOT NULL,
    wiro_status  TEXT,
    relay_status TEXT,
    note         TEXT
) STRICT;

-- table tasks
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
, wiro_callback_url TEXT, reconcile_offset INTEGER NOT NULL DEFAULT 0, run_unresolved_at REAL, waiting_for_slot INTEGER NOT NULL DEFAULT 0, callbacks_kept INTEGER NOT NULL DEFAULT 0, callback_bytes INTEGER NOT NULL DEFAULT 0, callbacks_dropped INTEGER NOT NULL DEFAULT 0, queue_deadline_at REAL, cancel_after_at REAL, run_timeout_seconds REAL NOT NULL DEFAULT 14400, claimed_by TEXT, claimed_until REAL) STRICT;

-- index callbacks_by_task
CREATE INDEX callbacks_by_task ON callbacks (task_id, id);

-- index deliveries_by_created
CREATE INDEX deliveries_by_created ON deliveries (created_at DESC, id DESC);

-- index deliveries_by_subscription
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, status, created_at DESC, id DESC);

-- index deliveries_by_task
CREATE INDEX deliveries_by_task ON deliveries (task_id, created_at DESC);

-- index deliveries_claimed
CREATE INDEX deliveries_claimed ON deliveries (claimed_until) WHERE claimed_by IS NOT NULL;

-- index deliveries_due
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

-- index deliveries_once
CREATE UNIQUE INDEX deliveries_once ON deliveries (event_seq, COALESCE(subscription_id, ''));

-- index delivery_attempts_by_delivery
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- index events_by_task
CREATE INDEX events_by_task ON events (task_id, seq);

-- index events_by_type
CREATE INDEX events_by_type ON events (type, seq);

-- index subscriptions_enabled
CREATE INDEX subscriptions_enabled ON subscriptions (enabled, id);

-- index task_timeline_by_task
CREATE INDEX task_timeline_by_task ON task_timeline (task_id, id);

-- index tasks_by_completed
CREATE INDEX tasks_by_completed ON tasks (completed_at) WHERE completed_at IS NOT NULL;

-- index tasks_by_created
CREATE INDEX tasks_by_created ON tasks (created_at DESC, id DESC);

-- index tasks_by_model_created
CREATE INDEX tasks_by_model_created ON tasks (model, created_at DESC, id DESC);

-- index tasks_by_status_created
CREATE INDEX tasks_by_status_created ON tasks (status, created_at DESC, id DESC);

-- index tasks_claimed
CREATE INDEX tasks_claimed ON tasks (claimed_until) WHERE claimed_by IS NOT NULL;

-- index tasks_deadline
CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE status IN ('queued', 'submitted', 'running');

-- index tasks_poll_due
CREATE INDEX tasks_poll_due ON tasks (poll_at) WHERE status IN ('submitted', 'running');

-- index tasks_run_in_flight
CREATE INDEX tasks_run_in_flight ON tasks (status, run_started_at)
    WHERE status = 'queued' AND run_started_at IS NOT NULL;

-- index tasks_slot_wait
CREATE INDEX tasks_slot_wait ON tasks (created_at, id)
    WHERE status = 'queued' AND waiting_for_slot = 1;

-- index tasks_submit_due
CREATE INDEX tasks_submit_due ON tasks (next_attempt_at) WHERE status = 'queued';
