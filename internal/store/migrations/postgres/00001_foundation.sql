-- Foundation: accounts, API keys, devices, employees, idempotency records and
-- rate-limit counters. Instants are Unix microseconds (UTC); 0 means "never".
-- Text that lists sort by uses COLLATE "C" so both dialects order bytes alike.

-- +goose Up
CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    email                TEXT NOT NULL DEFAULT '',
    timezone             TEXT NOT NULL DEFAULT 'UTC',
    direction_mode       TEXT NOT NULL DEFAULT 'first_in_last_out',
    day_start_minutes    INTEGER NOT NULL DEFAULT 0,
    dedup_window_seconds INTEGER NOT NULL DEFAULT 60,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE bootstrap (
    id         INTEGER PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    key_hash   TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE devices (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    serial_number        TEXT COLLATE "C" NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL DEFAULT '',
    site                 TEXT COLLATE "C" NOT NULL DEFAULT '',
    timezone             TEXT NOT NULL,
    direction_mode       TEXT,
    status               TEXT NOT NULL DEFAULT 'pending',
    last_seen_at         BIGINT NOT NULL DEFAULT 0,
    clock_offset_seconds INTEGER,
    firmware             TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    deleted_at           BIGINT
);
CREATE UNIQUE INDEX devices_serial_number_live ON devices (serial_number) WHERE deleted_at IS NULL;
CREATE INDEX devices_account_created ON devices (account_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE employees (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    badge_number TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL DEFAULT '',
    external_id  TEXT,
    email        TEXT,
    department   TEXT,
    card_number  TEXT,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE UNIQUE INDEX employees_badge_number_live ON employees (account_id, badge_number) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX employees_external_id_live ON employees (account_id, external_id)
    WHERE deleted_at IS NULL AND external_id IS NOT NULL;
CREATE INDEX employees_account_created ON employees (account_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE idempotency_keys (
    account_id      TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    claim           TEXT NOT NULL,
    state           TEXT NOT NULL,
    response_status INTEGER NOT NULL DEFAULT 0,
    response_body   BYTEA,
    created_at      BIGINT NOT NULL,
    locked_at       BIGINT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE rate_limit_counters (
    account_id   TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (account_id, window_start)
);

-- +goose Down
DROP TABLE rate_limit_counters;
DROP TABLE idempotency_keys;
DROP TABLE employees;
DROP TABLE devices;
DROP TABLE api_keys;
DROP TABLE bootstrap;
DROP TABLE accounts;
