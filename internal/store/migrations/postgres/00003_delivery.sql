-- Delivery: webhook endpoints, the outbox of deliveries (one per event and
-- endpoint, written with the event), every attempt, replay jobs, and the
-- e-mail outbox.

-- +goose Up
CREATE TABLE webhooks (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts (id),
    url                    TEXT NOT NULL,
    events                 TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason        TEXT NOT NULL DEFAULT '',
    secret                 TEXT NOT NULL,
    previous_secret        TEXT NOT NULL DEFAULT '',
    previous_secret_until  BIGINT NOT NULL DEFAULT 0,
    -- Delivery state of the endpoint.
    state                  TEXT NOT NULL DEFAULT 'healthy',
    failing_since          BIGINT NOT NULL DEFAULT 0,
    not_before             BIGINT NOT NULL DEFAULT 0,
    next_due_at            BIGINT NOT NULL DEFAULT 0,
    lease_owner            TEXT NOT NULL DEFAULT '',
    lease_until            BIGINT NOT NULL DEFAULT 0,
    incident_notified      BOOLEAN NOT NULL DEFAULT FALSE,
    last_delivered_at      BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    deleted_at             BIGINT
);
CREATE INDEX webhooks_account ON webhooks (account_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_due ON webhooks (next_due_at) WHERE next_due_at > 0 AND deleted_at IS NULL;

CREATE TABLE deliveries (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    account_id       TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_seq        BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    isolated         BOOLEAN NOT NULL DEFAULT FALSE,
    attempts         INTEGER NOT NULL DEFAULT 0,
    slot             INTEGER NOT NULL DEFAULT 0,
    scheduled_from   BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    last_attempt_at  BIGINT NOT NULL DEFAULT 0,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    delivered_at     BIGINT NOT NULL DEFAULT 0,
    failed_at        BIGINT NOT NULL DEFAULT 0,
    source           TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
-- The queue of an endpoint, oldest event first.
CREATE INDEX deliveries_queue ON deliveries (webhook_id, event_seq, seq) WHERE status = 'pending';
-- When the endpoint's pending deliveries are next due.
CREATE INDEX deliveries_due ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
-- Deliveries rejected alone, retried on their own schedule.
CREATE INDEX deliveries_isolated ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending' AND isolated;
CREATE INDEX deliveries_event ON deliveries (event_id, seq);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_failed ON deliveries (webhook_id, failed_at) WHERE status = 'failed';

CREATE TABLE delivery_attempts (
    seq              BIGSERIAL PRIMARY KEY,
    delivery_id      TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_us      BIGINT NOT NULL,
    status_code      INTEGER NOT NULL,
    response_excerpt TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    next_attempt_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, seq);

CREATE TABLE replays (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    range_start BIGINT NOT NULL,
    range_end   BIGINT NOT NULL,
    event_types TEXT NOT NULL,
    status      TEXT NOT NULL,
    total       INTEGER NOT NULL DEFAULT 0,
    enqueued    INTEGER NOT NULL DEFAULT 0,
    cursor_seq  BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX replays_webhook ON replays (webhook_id, created_at);
CREATE INDEX replays_running ON replays (status) WHERE status = 'running';

CREATE TABLE notifications (
    seq             BIGSERIAL PRIMARY KEY,
    account_id      TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE status = 'pending';

CREATE INDEX events_account_type ON events (account_id, type, seq);
CREATE INDEX events_account_created ON events (account_id, created_at, seq);

-- +goose Down
DROP INDEX events_account_created;
DROP INDEX events_account_type;
DROP TABLE notifications;
DROP TABLE replays;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE webhooks;
