-- Fan-out: subscriptions, one delivery per (event, subscription) written in the event's transaction,
-- and every delivery attempt.

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
CREATE INDEX subscriptions_enabled ON subscriptions (enabled, id);

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
) STRICT;
CREATE UNIQUE INDEX deliveries_once ON deliveries (event_seq, COALESCE(subscription_id, ''));
-- The dispatcher: pending deliveries that are due.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- GET /v1/deliveries, newest first, by subscription, status, event type or task; recover by time.
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, status, created_at DESC, id DESC);
CREATE INDEX deliveries_by_created ON deliveries (created_at DESC, id DESC);
CREATE INDEX deliveries_by_task ON deliveries (task_id, created_at DESC);

CREATE TABLE delivery_attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at               REAL NOT NULL,
    status_code      INTEGER,
    duration_ms      REAL NOT NULL,
    error            TEXT,
    response_excerpt TEXT
) STRICT;
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
