package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// WebhookSorts are the fields webhook lists sort by; the first is the default.
var WebhookSorts = []Column{{Name: "created_at", Kind: KindInt}, {Name: "url", Kind: KindText}}

const webhookCols = `id, account_id, url, events, description, enabled, disabled_reason, secret, previous_secret, previous_secret_until,
	state, failing_since, not_before, next_due_at, lease_owner, lease_until, incident_notified, last_delivered_at, created_at, updated_at`

func scanWebhook(r scanner) (attendance.Webhook, error) {
	var w attendance.Webhook
	var events string
	var prevUntil, failing, notBefore, due, lease, lastDelivered, created, updated int64
	err := r.Scan(&w.ID, &w.AccountID, &w.URL, &events, &w.Description, &w.Enabled, &w.DisabledReason, &w.Secret, &w.PreviousSecret, &prevUntil,
		&w.State, &failing, &notBefore, &due, &w.LeaseOwner, &lease, &w.IncidentMailed, &lastDelivered, &created, &updated)
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return w, fmt.Errorf("webhook %s events: %w", w.ID, err)
	}
	w.PreviousSecretUntil, w.FailingSince, w.NotBefore, w.NextDueAt = fromMicros(prevUntil), fromMicros(failing), fromMicros(notBefore), fromMicros(due)
	w.LeaseUntil, w.LastDeliveredAt, w.CreatedAt, w.UpdatedAt = fromMicros(lease), fromMicros(lastDelivered), fromMicros(created), fromMicros(updated)
	return w, nil
}

// CreateWebhook registers an endpoint. in must be validated; secret is the
// signing secret (given or generated).
func (tx *Tx) CreateWebhook(ctx context.Context, accountID string, in attendance.WebhookInput, secret string) (attendance.Webhook, error) {
	var n int
	if err := tx.queryRow(ctx, `SELECT count(*) FROM webhooks WHERE account_id = ? AND deleted_at IS NULL`, accountID).Scan(&n); err != nil {
		return attendance.Webhook{}, err
	}
	if n >= attendance.MaxWebhooksPerAccount {
		return attendance.Webhook{}, attendance.Errorf(attendance.CodeTooManyWebhooks, "",
			"An account has at most %d webhooks. Delete one, or subscribe one endpoint to several event types.", attendance.MaxWebhooksPerAccount)
	}
	w := attendance.Webhook{
		ID: id.New(id.Webhook), AccountID: accountID, URL: in.URL.Value, Events: []string{"*"}, Enabled: true, Secret: secret,
		State: attendance.WebhookHealthy, CreatedAt: tx.Now, UpdatedAt: tx.Now,
	}
	if in.Events.Set {
		w.Events = in.Events.Value
	}
	if in.Description.Set {
		w.Description = in.Description.Value
	}
	if in.Enabled.Set {
		w.Enabled = in.Enabled.Value
	}
	events, _ := json.Marshal(w.Events)
	_, err := tx.exec(ctx, `INSERT INTO webhooks (id, account_id, url, events, description, enabled, secret, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, w.ID, w.AccountID, w.URL, string(events), w.Description, w.Enabled, w.Secret, micros(tx.Now), micros(tx.Now))
	if err != nil {
		return w, fmt.Errorf("insert webhook: %w", err)
	}
	return w, nil
}

func webhookNotFound(webhookID string) error { return attendance.NotFound("webhook", webhookID) }

// Webhook reads a live webhook of the account.
func (s *Store) Webhook(ctx context.Context, accountID, webhookID string) (attendance.Webhook, error) {
	return readWebhook(ctx, s.reader(), accountID, webhookID, "")
}

// Webhook reads a live webhook of the account for update.
func (tx *Tx) Webhook(ctx context.Context, accountID, webhookID string) (attendance.Webhook, error) {
	return readWebhook(ctx, tx.conn, accountID, webhookID, tx.forUpdate())
}

func readWebhook(ctx context.Context, c conn, accountID, webhookID, lock string) (attendance.Webhook, error) {
	w, err := scanWebhook(c.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE account_id = ? AND id = ? AND deleted_at IS NULL`+lock, accountID, webhookID))
	if errors.Is(err, sql.ErrNoRows) {
		return w, webhookNotFound(webhookID)
	}
	return w, err
}

// ListWebhooks returns one page of the account's webhooks.
func (s *Store) ListWebhooks(ctx context.Context, accountID string, p ListParams) (Page[attendance.Webhook], error) {
	return listQuery(ctx, s.reader(), liveRows("webhooks", webhookCols, accountID), p, scanWebhook)
}

// UpdateWebhook changes the set fields of a webhook. Enabling it again
// clears its failure state, so delivery resumes at once.
func (tx *Tx) UpdateWebhook(ctx context.Context, accountID, webhookID string, in attendance.WebhookInput) (attendance.Webhook, error) {
	w, err := tx.Webhook(ctx, accountID, webhookID)
	if err != nil {
		return w, err
	}
	if in.URL.Set {
		w.URL = in.URL.Value
	}
	if in.Events.Set {
		w.Events = in.Events.Value
	}
	if in.Description.Set {
		w.Description = in.Description.Value
	}
	if in.Enabled.Set && in.Enabled.Value != w.Enabled {
		w.Enabled = in.Enabled.Value
		w.DisabledReason = ""
		if w.Enabled {
			w.State, w.FailingSince, w.NotBefore, w.NextDueAt, w.IncidentMailed = attendance.WebhookHealthy, time.Time{}, time.Time{}, tx.Now, false
		} else {
			w.DisabledReason = "disabled through the API"
		}
	}
	if in.URL.Set && w.State == attendance.WebhookFailing {
		w.NextDueAt = tx.Now // a new address: try it now
	}
	w.UpdatedAt = tx.Now
	events, _ := json.Marshal(w.Events)
	_, err = tx.exec(ctx, `UPDATE webhooks SET url = ?, events = ?, description = ?, enabled = ?, disabled_reason = ?, state = ?, failing_since = ?,
		not_before = ?, next_due_at = ?, incident_notified = ?, updated_at = ? WHERE id = ?`,
		w.URL, string(events), w.Description, w.Enabled, w.DisabledReason, w.State, micros(w.FailingSince), micros(w.NotBefore),
		micros(w.NextDueAt), w.IncidentMailed, micros(w.UpdatedAt), w.ID)
	return w, err
}

// DeleteWebhook removes a webhook; its pending deliveries end as failed.
func (tx *Tx) DeleteWebhook(ctx context.Context, accountID, webhookID string) error {
	res, err := tx.exec(ctx, `UPDATE webhooks SET deleted_at = ?, next_due_at = 0, updated_at = ? WHERE account_id = ? AND id = ? AND deleted_at IS NULL`,
		micros(tx.Now), micros(tx.Now), accountID, webhookID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return webhookNotFound(webhookID)
	}
	_, err = tx.exec(ctx, `UPDATE deliveries SET status = 'failed', last_error = 'the webhook was deleted', next_attempt_at = 0, failed_at = ?
		WHERE webhook_id = ? AND status = 'pending'`, micros(tx.Now), webhookID)
	return err
}

// RotateSecret gives a webhook a new secret; the old one keeps signing
// (beside it) until grace has passed.
func (tx *Tx) RotateSecret(ctx context.Context, accountID, webhookID, secret string, grace time.Duration) (attendance.Webhook, error) {
	w, err := tx.Webhook(ctx, accountID, webhookID)
	if err != nil {
		return w, err
	}
	w.PreviousSecret, w.PreviousSecretUntil, w.Secret, w.UpdatedAt = w.Secret, tx.Now.Add(grace), secret, tx.Now
	if grace <= 0 {
		w.PreviousSecret, w.PreviousSecretUntil = "", time.Time{}
	}
	_, err = tx.exec(ctx, `UPDATE webhooks SET secret = ?, previous_secret = ?, previous_secret_until = ?, updated_at = ? WHERE id = ?`,
		w.Secret, w.PreviousSecret, micros(w.PreviousSecretUntil), micros(w.UpdatedAt), w.ID)
	return w, err
}

// accountWebhooks is the account's live webhooks, read once per
// transaction by the event fan-out.
func (tx *Tx) accountWebhooks(ctx context.Context, accountID string) ([]attendance.Webhook, error) {
	if ws, ok := tx.webhooks[accountID]; ok {
		return ws, nil
	}
	out, err := queryAll(ctx, tx.conn, scanWebhook, `SELECT `+webhookCols+` FROM webhooks WHERE account_id = ? AND deleted_at IS NULL`, accountID)
	if err != nil {
		return nil, err
	}
	if tx.webhooks == nil {
		tx.webhooks = map[string][]attendance.Webhook{}
	}
	tx.webhooks[accountID] = out
	return out, nil
}

// WebhookStats counts what waits for an endpoint.
type WebhookStats struct {
	Pending       int
	NextAttemptAt time.Time
}

// WebhookStats reads the pending deliveries of a webhook.
func (s *Store) WebhookStats(ctx context.Context, webhookID string) (WebhookStats, error) {
	return webhookStats(ctx, s.reader(), webhookID)
}

// WebhookStats reads the pending deliveries of a webhook in the transaction.
func (tx *Tx) WebhookStats(ctx context.Context, webhookID string) (WebhookStats, error) {
	return webhookStats(ctx, tx.conn, webhookID)
}

func webhookStats(ctx context.Context, c conn, webhookID string) (WebhookStats, error) {
	var st WebhookStats
	var next sql.NullInt64
	err := c.queryRow(ctx, `SELECT count(*), MIN(next_attempt_at) FROM deliveries WHERE webhook_id = ? AND status = 'pending'`, webhookID).Scan(&st.Pending, &next)
	if next.Valid {
		st.NextAttemptAt = fromMicros(next.Int64)
	}
	return st, err
}
