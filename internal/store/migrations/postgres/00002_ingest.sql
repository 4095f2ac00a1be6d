-- Ingest: what the device gateway learns about devices, the punches it
-- normalizes (accepted and held back), the events they raise, the users
-- devices report, and the uploads of serials no account has registered.

-- +goose Up
ALTER TABLE devices ADD COLUMN protocol TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN push_version TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN ip_address TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN verify_codes TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE devices ADD COLUMN timezone_format TEXT NOT NULL DEFAULT 'hours';
ALTER TABLE devices ADD COLUMN dedup_window_seconds INTEGER;
ALTER TABLE devices ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN comm_key TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN registry_code TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN tz_offset_sent INTEGER;
ALTER TABLE devices ADD COLUMN tz_check_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN clock_samples TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_heartbeat_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN online_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_backlog_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN complete_through BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN user_count INTEGER;
ALTER TABLE devices ADD COLUMN fingerprint_count INTEGER;
ALTER TABLE devices ADD COLUMN face_count INTEGER;
ALTER TABLE devices ADD COLUMN log_count INTEGER;
ALTER TABLE devices ADD COLUMN log_capacity INTEGER;
ALTER TABLE devices ADD COLUMN log_warned BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE devices ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';

ALTER TABLE accounts ADD COLUMN earliest_punch_date INTEGER NOT NULL DEFAULT 20000102;
ALTER TABLE accounts ADD COLUMN max_punch_age_days INTEGER NOT NULL DEFAULT 400;
ALTER TABLE accounts ADD COLUMN max_punch_future_hours INTEGER NOT NULL DEFAULT 24;

CREATE TABLE punches (
    seq                  BIGSERIAL PRIMARY KEY,
    id                   TEXT COLLATE "C" NOT NULL UNIQUE,
    account_id           TEXT NOT NULL,
    device_id            TEXT NOT NULL,
    employee_id          TEXT,
    badge_number         TEXT COLLATE "C" NOT NULL,
    status               TEXT NOT NULL,
    reason               TEXT,
    detail               TEXT NOT NULL DEFAULT '',
    punch_time           BIGINT NOT NULL,
    device_time          TEXT NOT NULL,
    local_time           TEXT NOT NULL,
    local_date           INTEGER NOT NULL,
    work_date            INTEGER NOT NULL,
    clock_offset_seconds INTEGER NOT NULL DEFAULT 0,
    received_at          BIGINT NOT NULL,
    direction            TEXT,
    direction_source     TEXT,
    state                INTEGER,
    verify               TEXT NOT NULL DEFAULT '',
    method               TEXT NOT NULL,
    confidence           DOUBLE PRECISION,
    work_code            TEXT NOT NULL DEFAULT '',
    source               TEXT NOT NULL,
    external_id          TEXT,
    raw                  TEXT NOT NULL,
    dedup_key            TEXT NOT NULL,
    folded               BOOLEAN NOT NULL DEFAULT FALSE,
    event_id             TEXT,
    released_at          BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL
);
-- An exact re-upload (same device, PIN, device time, state, verify) is stored once.
CREATE UNIQUE INDEX punches_dedup ON punches (account_id, dedup_key);
-- Accepted and rejected records have their own (partial) indexes, so each
-- index stays as small as the queries on it allow. Rows tie-break on seq.
CREATE INDEX punches_time ON punches (account_id, punch_time, seq) WHERE status = 'accepted';
CREATE INDEX punches_received ON punches (account_id, received_at, seq) WHERE status = 'accepted';
CREATE INDEX punches_device ON punches (account_id, device_id, punch_time, seq) WHERE status = 'accepted';
CREATE INDEX punches_employee ON punches (account_id, employee_id, punch_time, seq) WHERE status = 'accepted';
CREATE INDEX punches_rejected ON punches (account_id, received_at, seq) WHERE status = 'rejected';
CREATE INDEX punches_rejected_badge ON punches (account_id, badge_number) WHERE status = 'rejected';

CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    device_id   TEXT,
    employee_id TEXT,
    punch_id    TEXT,
    payload     TEXT NOT NULL
);
CREATE INDEX events_account ON events (account_id, seq);

CREATE TABLE device_users (
    device_id    TEXT NOT NULL,
    pin          TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    name_raw     BYTEA,
    privilege    INTEGER,
    card         TEXT NOT NULL DEFAULT '',
    has_password BOOLEAN NOT NULL DEFAULT FALSE,
    user_group   TEXT NOT NULL DEFAULT '',
    templates    INTEGER NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (device_id, pin)
);

CREATE TABLE device_uploads (
    id          BIGSERIAL PRIMARY KEY,
    account_id  TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    query       TEXT NOT NULL,
    body        BYTEA NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL
);
CREATE INDEX device_uploads_device ON device_uploads (device_id, id);

CREATE TABLE unclaimed_devices (
    serial_number TEXT PRIMARY KEY,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    last_ip       TEXT NOT NULL,
    requests      INTEGER NOT NULL,
    push_version  TEXT NOT NULL DEFAULT '',
    device_type   TEXT NOT NULL DEFAULT '',
    held_uploads  INTEGER NOT NULL DEFAULT 0,
    held_bytes    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE held_uploads (
    id            BIGSERIAL PRIMARY KEY,
    serial_number TEXT NOT NULL,
    kind          TEXT NOT NULL,
    query         TEXT NOT NULL,
    body          BYTEA NOT NULL,
    remote_ip     TEXT NOT NULL,
    received_at   BIGINT NOT NULL
);
CREATE INDEX held_uploads_serial ON held_uploads (serial_number, id);

-- +goose Down
DROP TABLE held_uploads;
DROP TABLE unclaimed_devices;
DROP TABLE device_uploads;
DROP TABLE device_users;
DROP TABLE events;
DROP TABLE punches;
