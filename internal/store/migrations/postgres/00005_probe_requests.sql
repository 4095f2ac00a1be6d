-- When POST /v1/webhooks/{id}/retry last asked for a probe at once. A failed
-- probe that began before it does not answer it: the dispatcher then makes
-- the queue's head due again instead of leaving it for its next slot.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN probe_requested_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhooks DROP COLUMN probe_requested_at;
