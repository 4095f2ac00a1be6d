-- Commands to devices (each expanded into the device command lines it
-- sends, one per item), batches that fan one operation out to many
-- devices, and the account setting that syncs employees automatically.

-- +goose Up
CREATE TABLE batches (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    command      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    target       TEXT NOT NULL,
    devices      INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    completed_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX batches_account ON batches (account_id, created_at, id);

CREATE TABLE commands (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT COLLATE "C" NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    batch_id      TEXT,
    command       TEXT NOT NULL,
    payload       TEXT NOT NULL,
    source        TEXT NOT NULL,
    status        TEXT NOT NULL,
    total         INTEGER NOT NULL,
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    return_code   INTEGER,
    error_code    TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT NOT NULL DEFAULT 0,
    completed_at  BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX commands_device ON commands (device_id, seq);
CREATE INDEX commands_batch ON commands (batch_id, seq) WHERE batch_id IS NOT NULL;
CREATE INDEX commands_open ON commands (expires_at) WHERE status IN ('queued', 'sent');

-- One line per item: what the device is sent as C:<seq>:<text>.
CREATE TABLE command_lines (
    seq          BIGSERIAL PRIMARY KEY,
    command_seq  BIGINT NOT NULL,
    device_id    TEXT NOT NULL,
    item         INTEGER NOT NULL,
    item_key     TEXT NOT NULL DEFAULT '',
    text         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    return_code  INTEGER,
    sent_at      BIGINT NOT NULL DEFAULT 0,
    answered_at  BIGINT NOT NULL DEFAULT 0
);
-- What a device is to be sent next, in order.
CREATE INDEX command_lines_outbox ON command_lines (device_id, seq) WHERE status IN ('queued', 'sent');
CREATE INDEX command_lines_command ON command_lines (command_seq, item);

ALTER TABLE accounts ADD COLUMN auto_sync_employees BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE accounts DROP COLUMN auto_sync_employees;
DROP TABLE command_lines;
DROP TABLE commands;
DROP TABLE batches;
