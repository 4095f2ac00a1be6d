package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

const deliveryCols = `d.seq, d.id, d.account_id, d.webhook_id, d.event_id, d.event_seq, d.event_type, d.status, d.isolated, d.attempts, d.slot,
	d.scheduled_from, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.failed_at, d.source, d.created_at`

func scanDeliveryInto(d *attendance.Delivery, extra ...any) []any {
	return append([]any{&d.Seq, &d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventSeq, &d.EventType, &d.Status, &d.Isolated,
		&d.Attempts, &d.Slot}, extra...)
}

func scanDelivery(r scanner, withPayload bool) (attendance.Delivery, error) {
	var d attendance.Delivery
	var from, next, last, delivered, failed, created, eventCreated int64
	var payload string
	dest := scanDeliveryInto(&d, &from, &next, &last, &d.LastStatusCode, &d.LastError, &delivered, &failed, &d.Source, &created)
	if withPayload {
		dest = append(dest, &payload, &eventCreated)
	}
	if err := r.Scan(dest...); err != nil {
		return d, err
	}
	d.ScheduledFrom, d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt, d.CreatedAt = fromMicros(from), fromMicros(next), fromMicros(last), fromMicros(delivered), fromMicros(created)
	d.FailedAt = fromMicros(failed)
	if withPayload {
		d.Payload, d.EventCreated = []byte(payload), fromMicros(eventCreated)
	}
	return d, nil
}

func queryDeliveries(ctx context.Context, c conn, withPayload bool, where string, args ...any) ([]attendance.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM deliveries d WHERE ` + where
	if withPayload {
		q = `SELECT ` + deliveryCols + `, e.payload, e.created_at FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ` + where
	}
	return queryAll(ctx, c, func(r scanner) (attendance.Delivery, error) { return scanDelivery(r, withPayload) }, q, args...)
}

// ClaimDueWebhooks leases, to owner, up to limit endpoints that need the
// dispatcher now and that no live lease holds. While a node holds an
// endpoint's lease only it sends to that endpoint, which keeps its order.
func (s *Store) ClaimDueWebhooks(ctx context.Context, owner string, lease time.Duration, limit int) ([]attendance.Webhook, error) {
	var out []attendance.Webhook
	err := s.InTx(ctx, func(tx *Tx) error {
		now := micros(tx.Now)
		var err error
		out, err = queryAll(ctx, tx.conn, scanWebhook, `SELECT `+webhookCols+` FROM webhooks
			WHERE next_due_at > 0 AND deleted_at IS NULL AND next_due_at <= ? AND lease_until < ? AND enabled = ?
			ORDER BY next_due_at LIMIT ?`+tx.skipLocked(), now, now, true, limit)
		if err != nil {
			return err
		}
		until := tx.Now.Add(lease)
		for i := range out {
			out[i].LeaseOwner, out[i].LeaseUntil = owner, until
			if _, err := tx.exec(ctx, `UPDATE webhooks SET lease_owner = ?, lease_until = ? WHERE id = ?`, owner, micros(until), out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// ReleaseAllLeases frees every endpoint lease. Only for SQLite, where one
// node runs the dispatcher: leases a killed process held need not expire.
func (s *Store) ReleaseAllLeases(ctx context.Context) error {
	if s.dialect != SQLite {
		return errors.New("leases are shared between nodes on PostgreSQL and expire on their own")
	}
	_, err := s.writer().exec(ctx, `UPDATE webhooks SET lease_owner = '', lease_until = 0 WHERE lease_owner <> ''`)
	return err
}

// NextWebhookDue is the earliest time an enabled endpoint that no live lease
// holds needs the dispatcher (zero: none does). Endpoints leased to a node are
// that node's to send to; they count again once their lease has run out.
func (s *Store) NextWebhookDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.reader().queryRow(ctx, `SELECT MIN(next_due_at) FROM webhooks WHERE next_due_at > 0 AND deleted_at IS NULL AND enabled = ? AND lease_until < ?`,
		true, micros(s.now())).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, err
	}
	return fromMicros(next.Int64), nil
}

// RenewLease extends owner's lease on an endpoint; false when it was lost.
func (s *Store) RenewLease(ctx context.Context, webhookID, owner string, until time.Time) (bool, error) {
	res, err := s.writer().exec(ctx, `UPDATE webhooks SET lease_until = ? WHERE id = ? AND lease_owner = ?`, micros(until), webhookID, owner)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReadWebhook reads a live webhook by ID for the dispatcher.
func (s *Store) ReadWebhook(ctx context.Context, webhookID string) (attendance.Webhook, bool, error) {
	return readWebhookByID(ctx, s.reader(), webhookID, "")
}

// ReadWebhook reads a live webhook by ID for the dispatcher, for update.
func (tx *Tx) ReadWebhook(ctx context.Context, webhookID string) (attendance.Webhook, bool, error) {
	return readWebhookByID(ctx, tx.conn, webhookID, tx.forUpdate())
}

func readWebhookByID(ctx context.Context, c conn, webhookID, lock string) (attendance.Webhook, bool, error) {
	w, err := scanWebhook(c.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ? AND deleted_at IS NULL`+lock, webhookID))
	if errors.Is(err, sql.ErrNoRows) {
		return w, false, nil
	}
	return w, err == nil, err
}

// QueueHead returns up to limit deliveries waiting in an endpoint's queue
// (pending and not isolated), oldest event first, with their payloads.
func (s *Store) QueueHead(ctx context.Context, webhookID string, limit int) ([]attendance.Delivery, error) {
	return queryDeliveries(ctx, s.reader(), true,
		`d.webhook_id = ? AND d.status = 'pending' AND NOT d.isolated ORDER BY d.event_seq, d.seq LIMIT ?`, webhookID, limit)
}

// QueueAfter returns up to limit deliveries of an endpoint's queue that
// come after the one at (eventSeq, seq) in queue order, with their
// payloads: the next batch while the previous one is still being committed.
func (s *Store) QueueAfter(ctx context.Context, webhookID string, eventSeq, seq int64, limit int) ([]attendance.Delivery, error) {
	return queryDeliveries(ctx, s.reader(), true,
		`d.webhook_id = ? AND d.status = 'pending' AND NOT d.isolated AND (d.event_seq, d.seq) > (?, ?) ORDER BY d.event_seq, d.seq LIMIT ?`,
		webhookID, eventSeq, seq, limit)
}

// DueIsolated returns an endpoint's isolated deliveries (rejected alone,
// retried on their own schedule) whose next slot has come, oldest event
// first, with their payloads.
func (s *Store) DueIsolated(ctx context.Context, webhookID string, now time.Time, limit int) ([]attendance.Delivery, error) {
	return queryDeliveries(ctx, s.reader(), true,
		`d.webhook_id = ? AND d.status = 'pending' AND d.isolated AND d.next_attempt_at <= ? ORDER BY d.event_seq, d.seq LIMIT ?`,
		webhookID, micros(now), limit)
}

// QueueDue reports whether a delivery waiting in an endpoint's queue (not
// isolated) has reached its next slot: a failing endpoint is probed then.
func (s *Store) QueueDue(ctx context.Context, webhookID string, now time.Time) (bool, error) {
	var due bool
	err := s.reader().queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE webhook_id = ? AND status = 'pending' AND NOT isolated AND next_attempt_at <= ?)`,
		webhookID, micros(now)).Scan(&due)
	return due, err
}

// ConsumeDueSlots records that a failed probe of an endpoint stood for the
// attempts its queued deliveries were due at now: each due delivery moves to
// its first slot after now (offsets of schedule, counted from its
// scheduled_from; slots[0] is 0, the first attempt), and those with no
// slot left fail with lastError. It returns the event IDs of the deliveries that failed.
func (tx *Tx) ConsumeDueSlots(ctx context.Context, webhookID string, now time.Time, schedule []time.Duration, lastError string) ([]string, error) {
	// schedule holds the slots' offsets, the first attempt's 0 included.
	if len(schedule) == 0 {
		return nil, errors.New("empty retry schedule")
	}
	final := schedule[len(schedule)-1]
	failed, err := queryAll(ctx, tx.conn, scanValue[string], `UPDATE deliveries SET status = 'failed', slot = ?, next_attempt_at = 0, last_error = ?, failed_at = ?
		WHERE webhook_id = ? AND status = 'pending' AND NOT isolated AND next_attempt_at <= ? AND scheduled_from + ? <= ?
		RETURNING event_id`, len(schedule), lastError, micros(now), webhookID, micros(now), final.Microseconds(), micros(now))
	if err != nil {
		return nil, err
	}
	// The first slot after now, as a CASE over the schedule's offsets.
	var slot, next strings.Builder
	var slotArgs, nextArgs []any
	slot.WriteString("CASE")
	next.WriteString("CASE")
	for i, off := range schedule[:len(schedule)-1] {
		slot.WriteString(" WHEN scheduled_from + ? > ? THEN CAST(? AS INTEGER)")
		slotArgs = append(slotArgs, off.Microseconds(), micros(now), i)
		next.WriteString(" WHEN scheduled_from + ? > ? THEN scheduled_from + ?")
		nextArgs = append(nextArgs, off.Microseconds(), micros(now), off.Microseconds())
	}
	slot.WriteString(" ELSE CAST(? AS INTEGER) END")
	slotArgs = append(slotArgs, len(schedule)-1)
	next.WriteString(" ELSE scheduled_from + ? END")
	nextArgs = append(nextArgs, final.Microseconds())
	args := append(append(slotArgs, nextArgs...), lastError, webhookID, micros(now))
	_, err = tx.exec(ctx, `UPDATE deliveries SET slot = `+slot.String()+`, next_attempt_at = `+next.String()+`, last_error = ?
		WHERE webhook_id = ? AND status = 'pending' AND NOT isolated AND next_attempt_at <= ?`, args...)
	return failed, err
}

// RepairDue makes every enabled endpoint that has pending deliveries but is
// due at no time due now: a guard against any wake-up lost between nodes.
func (s *Store) RepairDue(ctx context.Context) (int, error) {
	res, err := s.writer().exec(ctx, `UPDATE webhooks SET next_due_at = ? WHERE next_due_at = 0 AND deleted_at IS NULL AND enabled = ?
		AND EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = webhooks.id AND d.status = 'pending')`, micros(s.Now()), true)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// UpdateDeliveries writes the outcomes of attempts on deliveries, a chunk
// of them per statement (an endpoint's batch is one round trip, not one per
// delivery).
func (tx *Tx) UpdateDeliveries(ctx context.Context, ds []*attendance.Delivery) error {
	const cols = 11
	row := "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BOOLEAN), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), " +
		"CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))"
	for start := 0; start < len(ds); start += insertChunk {
		chunk := ds[start:min(start+insertChunk, len(ds))]
		args := make([]any, 0, len(chunk)*cols)
		for _, d := range chunk {
			args = append(args, d.ID, d.Status, d.Isolated, d.Attempts, d.Slot, micros(d.NextAttemptAt), micros(d.LastAttemptAt), d.LastStatusCode,
				d.LastError, micros(d.DeliveredAt), micros(d.FailedAt))
		}
		_, err := tx.exec(ctx, `WITH v (id, status, isolated, attempts, slot, next_attempt_at, last_attempt_at, last_status_code, last_error, delivered_at, failed_at)
			AS (VALUES `+valuesRows(row, len(chunk))+`)
			UPDATE deliveries SET status = v.status, isolated = v.isolated, attempts = v.attempts, slot = v.slot, next_attempt_at = v.next_attempt_at,
			last_attempt_at = v.last_attempt_at, last_status_code = v.last_status_code, last_error = v.last_error, delivered_at = v.delivered_at,
			failed_at = v.failed_at FROM v WHERE deliveries.id = v.id`, args...)
		if err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
	}
	return nil
}

// InsertAttempts logs attempts.
func (tx *Tx) InsertAttempts(ctx context.Context, as []attendance.Attempt) error {
	const cols = 8
	for start := 0; start < len(as); start += insertChunk {
		chunk := as[start:min(start+insertChunk, len(as))]
		row := "(?, ?, ?, ?, ?, ?, ?, ?)"
		args := make([]any, 0, len(chunk)*cols)
		for _, a := range chunk {
			args = append(args, a.DeliveryID, a.Attempt, micros(a.StartedAt), a.Duration.Microseconds(), a.StatusCode, a.ResponseExcerpt, a.Error, micros(a.NextAttemptAt))
		}
		_, err := tx.exec(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_us, status_code, response_excerpt, error, next_attempt_at)
			VALUES `+valuesRows(row, len(chunk)), args...)
		if err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
	}
	return nil
}

// ErrLeaseLost means another node now holds the endpoint: the work since the
// last renewal must not be committed by this one.
var ErrLeaseLost = errors.New("webhook lease lost")

// SaveWebhookState writes the dispatcher's view of an endpoint — its state,
// the 410 that disabled it, the incident e-mail — if owner still holds its
// lease, and sets when it is next due from what is pending: now while the
// queue is healthy and not empty, else the earliest slot of a pending
// delivery, never before Retry-After's time.
func (tx *Tx) SaveWebhookState(ctx context.Context, w *attendance.Webhook, owner string, release bool) error {
	if tx.dialect == Postgres {
		// Lock the row first: a transaction queueing deliveries updates it
		// too, so once the lock is ours the deliveries it queued are visible
		// to the reads below, and the due time cannot miss them.
		if _, err := tx.exec(ctx, `SELECT 1 FROM webhooks WHERE id = ? FOR UPDATE`, w.ID); err != nil {
			return err
		}
	}
	// Both look-ups follow an index (the queue's order, the due times),
	// so their cost does not grow with what was already delivered.
	var queued bool
	var head int64
	err := tx.queryRow(ctx, `SELECT seq FROM deliveries WHERE webhook_id = ? AND status = 'pending' AND NOT isolated
		ORDER BY event_seq, seq LIMIT 1`, w.ID).Scan(&head)
	switch {
	case err == nil:
		queued = true
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	var earliest sql.NullInt64
	err = tx.queryRow(ctx, `SELECT next_attempt_at FROM deliveries WHERE webhook_id = ? AND status = 'pending'
		ORDER BY next_attempt_at LIMIT 1`, w.ID).Scan(&earliest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var due time.Time
	switch {
	case !earliest.Valid:
	case queued && w.State == attendance.WebhookHealthy:
		due = tx.Now
	default:
		due = fromMicros(earliest.Int64)
	}
	if !due.IsZero() && due.Before(w.NotBefore) {
		due = w.NotBefore
	}
	w.NextDueAt = due
	if release {
		w.LeaseOwner, w.LeaseUntil = "", time.Time{}
	}
	// The lease itself is left alone unless released: a renewal may have
	// moved it since w was read.
	res, err := tx.exec(ctx, `UPDATE webhooks SET state = ?, failing_since = ?, not_before = ?, next_due_at = ?, incident_notified = ?,
		last_delivered_at = ?, lease_owner = CASE WHEN ? THEN '' ELSE lease_owner END, lease_until = CASE WHEN ? THEN 0 ELSE lease_until END,
		enabled = CASE WHEN ? THEN enabled ELSE ? END, disabled_reason = CASE WHEN ? THEN disabled_reason ELSE ? END
		WHERE id = ? AND lease_owner = ?`,
		w.State, micros(w.FailingSince), micros(w.NotBefore), micros(due), w.IncidentMailed, micros(w.LastDeliveredAt), release,
		release, w.Enabled, w.Enabled, w.Enabled, w.DisabledReason, w.ID, owner)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// DeliveryList selects deliveries of an event or a webhook.
type DeliveryList struct {
	EventID   string
	WebhookID string
	Status    string
}

// DeliverySorts are the fields delivery lists sort by.
var DeliverySorts = []Column{{Name: "created_at", Kind: KindInt, Expr: "d.seq"}}

// maxAttemptsShown bounds the attempts read per delivery for views.
const maxAttemptsShown = 50

// ListDeliveries returns one page of an account's deliveries, each with its
// attempts.
func (s *Store) ListDeliveries(ctx context.Context, accountID string, q DeliveryList, p ListParams) (Page[attendance.Delivery], error) {
	l := listSQL{from: "deliveries d", cols: deliveryCols, tieExpr: "d.seq", tieKind: KindInt, countFrom: "deliveries d",
		where: []string{"d.account_id = ?"}, args: []any{accountID}}
	if q.EventID != "" {
		l.where, l.args = append(l.where, "d.event_id = ?"), append(l.args, q.EventID)
	}
	if q.WebhookID != "" {
		l.where, l.args = append(l.where, "d.webhook_id = ?"), append(l.args, q.WebhookID)
	}
	if q.Status != "" {
		l.where, l.args = append(l.where, "d.status = ?"), append(l.args, q.Status)
	}
	page, err := listQuery(ctx, s.reader(), l, p, func(r scanner) (attendance.Delivery, error) { return scanDelivery(r, false) })
	if err != nil {
		return page, err
	}
	for i := range page.Items {
		if page.Items[i].AttemptLog, err = s.attempts(ctx, page.Items[i].ID); err != nil {
			return page, err
		}
	}
	return page, nil
}

func (s *Store) attempts(ctx context.Context, deliveryID string) ([]attendance.Attempt, error) {
	rows, err := s.reader().query(ctx, `SELECT delivery_id, attempt, started_at, duration_us, status_code, response_excerpt, error, next_attempt_at
		FROM delivery_attempts WHERE delivery_id = ? ORDER BY seq LIMIT ?`, deliveryID, maxAttemptsShown)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.Attempt
	for rows.Next() {
		var a attendance.Attempt
		var started, dur, next int64
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &dur, &a.StatusCode, &a.ResponseExcerpt, &a.Error, &next); err != nil {
			return nil, err
		}
		a.StartedAt, a.Duration, a.NextAttemptAt = fromMicros(started), time.Duration(dur)*time.Microsecond, fromMicros(next)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Redeliver queues a new delivery of an event to each given webhook (all
// the account's enabled webhooks subscribed to it when none are given).
func (tx *Tx) Redeliver(ctx context.Context, accountID, eventID string, webhookIDs []string) ([]attendance.Delivery, error) {
	var seq int64
	var typ string
	err := tx.queryRow(ctx, `SELECT seq, type FROM events WHERE account_id = ? AND id = ?`, accountID, eventID).Scan(&seq, &typ)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, attendance.NotFound("event", eventID)
	}
	if err != nil {
		return nil, err
	}
	hooks, err := tx.accountWebhooks(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var ds []attendance.Delivery
	for _, w := range hooks {
		switch {
		case len(webhookIDs) > 0:
			found := false
			for _, want := range webhookIDs {
				found = found || want == w.ID
			}
			if !found {
				continue
			}
		case !w.Enabled || !w.Subscribed(typ):
			continue
		}
		ds = append(ds, newDelivery(w, eventID, seq, typ, attendance.SourceRedeliver, tx.Now))
	}
	for _, want := range webhookIDs {
		found := false
		for _, d := range ds {
			found = found || d.WebhookID == want
		}
		if !found {
			return nil, attendance.Errorf(attendance.CodeResourceNotFound, "webhook_id", "No webhook with id %q exists in this account.", want)
		}
	}
	return ds, tx.InsertDeliveries(ctx, ds)
}

// RequeueFailed puts a webhook's deliveries that failed (were given up)
// since the given time back in its queue, with a fresh schedule, and makes it due now (a
// probe at once). It returns how many it re-queued.
func (tx *Tx) RequeueFailed(ctx context.Context, accountID, webhookID string, since time.Time) (int, error) {
	if _, err := tx.Webhook(ctx, accountID, webhookID); err != nil {
		return 0, err
	}
	res, err := tx.exec(ctx, `UPDATE deliveries SET status = 'pending', isolated = ?, slot = 0, scheduled_from = ?, next_attempt_at = ?, failed_at = 0,
		source = ? WHERE webhook_id = ? AND status = 'failed' AND failed_at >= ?`,
		false, micros(tx.Now), micros(tx.Now), attendance.SourceRetry, webhookID, micros(since))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	// Probe now: due at once, whatever Retry-After said — and recorded, so
	// that a failed probe already under way does not answer this request
	// (AnswerProbeRequest).
	if _, err := tx.exec(ctx, `UPDATE webhooks SET next_due_at = ?, not_before = 0, probe_requested_at = ? WHERE id = ?`,
		micros(tx.Now), micros(tx.Now), webhookID); err != nil {
		return 0, err
	}
	if err := tx.makeHeadDue(ctx, webhookID); err != nil {
		return 0, err
	}
	tx.AfterCommit(tx.store.wakeDeliveries)
	return int(n), nil
}

// makeHeadDue makes the first delivery of an endpoint's queue due now, if it
// is not already.
func (tx *Tx) makeHeadDue(ctx context.Context, webhookID string) error {
	_, err := tx.exec(ctx, `UPDATE deliveries SET next_attempt_at = ? WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at > ?
		AND seq = (SELECT seq FROM deliveries WHERE webhook_id = ? AND status = 'pending' AND NOT isolated ORDER BY event_seq, seq LIMIT 1)`,
		micros(tx.Now), webhookID, micros(tx.Now), webhookID)
	return err
}

// AnswerProbeRequest is for the commit of a dispatcher step that began at
// stepStart and leaves the endpoint failing. If a retry asked for a probe
// since the step began, the step's failed attempts — sent before the request,
// perhaps before the receiver came back — do not answer it: the queue's head
// is made due now, and AnswerProbeRequest reports true (the caller drops any
// Retry-After too). Without this, the step's commit would move the head to
// its next slot (a minute or hours away) after the retry had found it due.
// On PostgreSQL it locks the endpoint's row, as SaveWebhookState does, so a
// retry committing later sees this commit's slots and moves the head itself.
func (tx *Tx) AnswerProbeRequest(ctx context.Context, webhookID string, stepStart time.Time) (bool, error) {
	var requested int64
	err := tx.queryRow(ctx, `SELECT probe_requested_at FROM webhooks WHERE id = ?`+tx.forUpdate(), webhookID).Scan(&requested)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && requested < micros(stepStart)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, tx.makeHeadDue(ctx, webhookID)
}

// CreateReplay records a replay job and counts the events it covers.
func (tx *Tx) CreateReplay(ctx context.Context, r *attendance.Replay) error {
	r.ID, r.Status, r.CreatedAt = id.New(id.Replay), attendance.ReplayRunning, tx.Now
	q := `SELECT count(*) FROM events WHERE account_id = ? AND created_at >= ? AND created_at <= ?`
	args := []any{r.AccountID, micros(r.Start), micros(r.End)}
	if len(r.EventTypes) > 0 {
		in, list := tx.in("type", r.EventTypes)
		q += " AND " + in
		args = append(args, list)
	}
	if err := tx.queryRow(ctx, q, args...).Scan(&r.Total); err != nil {
		return err
	}
	types := strings.Join(r.EventTypes, ",")
	_, err := tx.exec(ctx, `INSERT INTO replays (id, account_id, webhook_id, range_start, range_end, event_types, status, total, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.AccountID, r.WebhookID, micros(r.Start), micros(r.End), types, r.Status, r.Total, micros(r.CreatedAt))
	return err
}

const replayCols = `id, account_id, webhook_id, range_start, range_end, event_types, status, total, enqueued, cursor_seq, created_at, finished_at`

func scanReplay(r scanner) (attendance.Replay, error) {
	var x attendance.Replay
	var start, end, created, finished int64
	var types string
	err := r.Scan(&x.ID, &x.AccountID, &x.WebhookID, &start, &end, &types, &x.Status, &x.Total, &x.Enqueued, &x.CursorSeq, &created, &finished)
	x.Start, x.End, x.CreatedAt, x.FinishedAt = fromMicros(start), fromMicros(end), fromMicros(created), fromMicros(finished)
	if types != "" {
		x.EventTypes = strings.Split(types, ",")
	}
	return x, err
}

// Replay reads a replay job of a webhook of the account.
func (s *Store) Replay(ctx context.Context, accountID, webhookID, replayID string) (attendance.Replay, error) {
	r, err := scanReplay(s.reader().queryRow(ctx, `SELECT `+replayCols+` FROM replays WHERE account_id = ? AND webhook_id = ? AND id = ?`, accountID, webhookID, replayID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, attendance.NotFound("replay", replayID)
	}
	return r, err
}

// replayStep bounds the events one step of a replay enqueues.
const replayStep = 1000

// AdvanceReplay takes one running replay whose lease is free and enqueues
// its next step of events; done is false when there was nothing to do.
func (s *Store) AdvanceReplay(ctx context.Context) (attendance.Replay, bool, error) {
	var r attendance.Replay
	did := false
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		r, err = scanReplay(tx.queryRow(ctx, `SELECT `+replayCols+` FROM replays WHERE status = 'running' AND lease_until < ? ORDER BY created_at LIMIT 1`+tx.skipLocked(), micros(tx.Now)))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		did = true
		w, err := tx.Webhook(ctx, r.AccountID, r.WebhookID)
		if attendance.ErrorCode(err) == attendance.CodeResourceNotFound {
			r.Status, r.FinishedAt = attendance.ReplayCompleted, tx.Now // the webhook was deleted
			_, err = tx.exec(ctx, `UPDATE replays SET status = ?, finished_at = ? WHERE id = ?`, r.Status, micros(r.FinishedAt), r.ID)
			return err
		}
		if err != nil {
			return err
		}
		q := `SELECT seq, id, type FROM events WHERE account_id = ? AND seq > ? AND created_at >= ? AND created_at <= ?`
		args := []any{r.AccountID, r.CursorSeq, micros(r.Start), micros(r.End)}
		if len(r.EventTypes) > 0 {
			in, list := tx.in("type", r.EventTypes)
			q += " AND " + in
			args = append(args, list)
		}
		rows, err := tx.query(ctx, q+` ORDER BY seq LIMIT ?`, append(args, replayStep)...)
		if err != nil {
			return err
		}
		var ds []attendance.Delivery
		for rows.Next() {
			var seq int64
			var evID, typ string
			if err := rows.Scan(&seq, &evID, &typ); err != nil {
				rows.Close()
				return err
			}
			ds = append(ds, newDelivery(w, evID, seq, typ, attendance.SourceReplay, tx.Now))
			r.CursorSeq = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.InsertDeliveries(ctx, ds); err != nil {
			return err
		}
		r.Enqueued += len(ds)
		if len(ds) < replayStep {
			r.Status, r.FinishedAt = attendance.ReplayCompleted, tx.Now
		}
		_, err = tx.exec(ctx, `UPDATE replays SET enqueued = ?, cursor_seq = ?, status = ?, finished_at = ? WHERE id = ?`,
			r.Enqueued, r.CursorSeq, r.Status, micros(r.FinishedAt), r.ID)
		return err
	})
	return r, did, err
}

// QueueNotification puts an e-mail in the outbox, sent by the notifier.
func (tx *Tx) QueueNotification(ctx context.Context, n attendance.Notification) error {
	_, err := tx.exec(ctx, `INSERT INTO notifications (account_id, recipient, subject, body, status, next_attempt_at, created_at)
		VALUES (?, ?, ?, ?, 'pending', ?, ?)`, n.AccountID, n.Recipient, n.Subject, n.Body, micros(tx.Now), micros(tx.Now))
	return err
}

// ClaimNotification leases the oldest due e-mail of the outbox.
func (s *Store) ClaimNotification(ctx context.Context, lease time.Duration) (attendance.Notification, bool, error) {
	var n attendance.Notification
	found := false
	err := s.InTx(ctx, func(tx *Tx) error {
		var created int64
		err := tx.queryRow(ctx, `SELECT seq, account_id, recipient, subject, body, status, attempts, last_error, created_at FROM notifications
			WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until < ? ORDER BY next_attempt_at LIMIT 1`+tx.skipLocked(),
			micros(tx.Now), micros(tx.Now)).Scan(&n.Seq, &n.AccountID, &n.Recipient, &n.Subject, &n.Body, &n.Status, &n.Attempts, &n.LastError, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		n.CreatedAt, found = fromMicros(created), true
		_, err = tx.exec(ctx, `UPDATE notifications SET lease_until = ? WHERE seq = ?`, micros(tx.Now.Add(lease)), n.Seq)
		return err
	})
	return n, found, err
}

// FinishNotification records the outcome of sending an e-mail: sent, retried
// at next, or (next zero) given up.
func (s *Store) FinishNotification(ctx context.Context, n attendance.Notification, sendErr error, next time.Time) error {
	status, errText, sent := "sent", "", micros(s.Now())
	if sendErr != nil {
		status, errText, sent = "pending", sendErr.Error(), 0
		if next.IsZero() {
			status = "failed"
		}
	}
	_, err := s.writer().exec(ctx, `UPDATE notifications SET status = ?, attempts = attempts + 1, last_error = ?, sent_at = ?, next_attempt_at = ?, lease_until = 0
		WHERE seq = ?`, status, errText, sent, micros(next), n.Seq)
	return err
}

// Notifications lists an account's e-mails, newest first (tests and operators).
func (s *Store) Notifications(ctx context.Context, accountID string) ([]attendance.Notification, error) {
	rows, err := s.reader().query(ctx, `SELECT seq, account_id, recipient, subject, body, status, attempts, last_error, created_at, sent_at
		FROM notifications WHERE account_id = ? ORDER BY seq DESC`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.Notification
	for rows.Next() {
		var n attendance.Notification
		var created, sent int64
		if err := rows.Scan(&n.Seq, &n.AccountID, &n.Recipient, &n.Subject, &n.Body, &n.Status, &n.Attempts, &n.LastError, &created, &sent); err != nil {
			return nil, err
		}
		n.CreatedAt, n.SentAt = fromMicros(created), fromMicros(sent)
		out = append(out, n)
	}
	return out, rows.Err()
}
