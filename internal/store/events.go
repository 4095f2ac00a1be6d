package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// InsertEvents records events in the transaction of their cause and, in the
// same transaction, a delivery for every enabled webhook of the account that
// subscribes to each (the outbox): nothing is held only in memory.
//
// On PostgreSQL, event-recording transactions of one account take turns
// (an advisory lock held to commit), so events commit in the order of their
// sequence numbers and an endpoint never sees a later event before an
// earlier one. To hold that lock as briefly as possible, the events are
// written when the transaction is about to commit (flushEvents), after all
// its other work, with their deliveries in the same statement: the lock then
// covers that statement and the commit, not the whole device request.
//
// On SQLite a request of a group commit (see batch.go) holds its events back
// too, and the group writes all of them just before its COMMIT: one
// statement, and one read of each account's webhooks, for the group instead
// of one of each for every request in it.
func (tx *Tx) InsertEvents(ctx context.Context, events []attendance.Event) error {
	if len(events) == 0 {
		return nil
	}
	if tx.dialect == Postgres || tx.group != nil {
		tx.pendingEvents = append(tx.pendingEvents, events...)
		return nil
	}
	return tx.insertEvents(ctx, events)
}

// flushEvents writes the events InsertEvents held back; InTx calls it just
// before COMMIT.
func (tx *Tx) flushEvents(ctx context.Context) error {
	events := tx.pendingEvents
	tx.pendingEvents = nil
	if len(events) == 0 {
		return nil
	}
	return tx.insertEvents(ctx, events)
}

func (tx *Tx) insertEvents(ctx context.Context, events []attendance.Event) error {
	// The subscribed endpoints are read first: nothing but the inserts and
	// the commit happens under the lock below.
	var deliveries []attendance.Delivery
	for _, e := range events {
		hooks, err := tx.accountWebhooks(ctx, e.AccountID)
		if err != nil {
			return err
		}
		for _, w := range hooks {
			if w.Enabled && w.Subscribed(e.Type) {
				// Its event's sequence number is known once inserted.
				deliveries = append(deliveries, newDelivery(w, e.ID, 0, e.Type, attendance.SourceEvent, e.CreatedAt))
			}
		}
	}
	// On PostgreSQL the first chunk's statement takes the accounts' locks
	// itself (before any row draws its sequence number), which saves a
	// round trip while they are held.
	var lock string
	var lockArgs []any
	if tx.dialect == Postgres {
		var accounts []string
		for _, e := range events {
			if !slices.Contains(accounts, e.AccountID) {
				accounts = append(accounts, e.AccountID)
			}
		}
		slices.Sort(accounts)
		lock = `locked AS (SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(hashtextextended('punchconnect.events.' || a, 0))
			FROM unnest(?::text[]) AS a ORDER BY a) AS l)`
		lockArgs = []any{accounts}
		if len(events) <= insertChunk && len(deliveries) > 0 && len(deliveries) <= maxFoldedDeliveries {
			return tx.insertEventsAndDeliveries(ctx, events, deliveries, lock, lockArgs)
		}
	}
	const cols = 8
	seqs := make(map[string]int64, len(events))
	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		args := make([]any, 0, len(chunk)*cols+1)
		var query string
		if lock != "" {
			// Typed, as the values feed a SELECT whose filter waits for the locks.
			args = append(args, lockArgs...)
			query = `WITH ` + lock + ` INSERT INTO events (id, account_id, type, created_at, device_id, employee_id, punch_id, payload)
				SELECT v.* FROM (VALUES ` + valuesRows(typedEventRow, len(chunk)) + `) AS v WHERE (SELECT n FROM locked) >= 0 RETURNING id, seq`
			lock = "" // held to commit: later chunks need not ask again
		} else {
			query = `INSERT INTO events (id, account_id, type, created_at, device_id, employee_id, punch_id, payload) VALUES ` +
				valuesRows("(?, ?, ?, ?, ?, ?, ?, ?)", len(chunk)) + ` RETURNING id, seq`
		}
		args = appendEventArgs(args, chunk)
		if err := tx.insertReturningSeqs(ctx, query, args, seqs); err != nil {
			return err
		}
	}
	tx.AfterCommit(tx.store.announceEvents)
	for i := range deliveries {
		deliveries[i].EventSeq = seqs[deliveries[i].EventID]
	}
	return tx.InsertDeliveries(ctx, deliveries)
}

// maxFoldedDeliveries bounds the deliveries written in the events'
// statement (10 parameters each, of PostgreSQL's 65,535 a statement).
const maxFoldedDeliveries = 2000

// insertEventsAndDeliveries writes events (one chunk), their deliveries and
// their endpoints' due times in one statement that first takes the
// accounts' event-order locks (PostgreSQL): under the locks there is then
// this one round trip and the commit, instead of three and the commit
// (measured: one round trip fewer under the lock made recording a backlog
// through the API with a webhook 10% faster). The deliveries take their
// events' sequence numbers from the insert; the due times wait for the
// locks too, so no endpoint row is locked before them.
func (tx *Tx) insertEventsAndDeliveries(ctx context.Context, events []attendance.Event, deliveries []attendance.Delivery, lock string, lockArgs []any) error {
	due := dueTimes(deliveries)
	args := make([]any, 0, len(lockArgs)+len(events)*8+len(deliveries)*10+len(due)*2)
	args = append(args, lockArgs...)
	args = appendEventArgs(args, events)
	for _, d := range deliveries {
		args = append(args, d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType, d.Status,
			micros(d.ScheduledFrom), micros(d.NextAttemptAt), d.Source, micros(d.CreatedAt))
	}
	for webhookID, at := range due {
		args = append(args, webhookID, micros(at))
	}
	query := `WITH ` + lock + `,
		ev AS (INSERT INTO events (id, account_id, type, created_at, device_id, employee_id, punch_id, payload)
			SELECT v.* FROM (VALUES ` + valuesRows(typedEventRow, len(events)) + `) AS v WHERE (SELECT n FROM locked) >= 0 RETURNING id, seq),
		dl AS (INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_seq, event_type, status, scheduled_from, next_attempt_at, source, created_at)
			SELECT d.id, d.account_id, d.webhook_id, d.event_id, ev.seq, d.event_type, d.status, d.scheduled_from, d.next_attempt_at, d.source, d.created_at
			FROM (VALUES ` + valuesRows("(?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::bigint, ?::bigint, ?::text, ?::bigint)", len(deliveries)) + `)
				AS d(id, account_id, webhook_id, event_id, event_type, status, scheduled_from, next_attempt_at, source, created_at)
			JOIN ev ON ev.id = d.event_id),
		due AS (UPDATE webhooks AS w SET next_due_at = u.at FROM (VALUES ` + valuesRows("(?::text, ?::bigint)", len(due)) + `) AS u(id, at)
			WHERE w.id = u.id AND (w.next_due_at = 0 OR w.next_due_at > u.at) AND (SELECT n FROM locked) >= 0)
		SELECT id, seq FROM ev`
	if err := tx.insertReturningSeqs(ctx, query, args, map[string]int64{}); err != nil {
		return err
	}
	tx.AfterCommit(tx.store.announceEvents)
	tx.AfterCommit(tx.store.wakeDeliveries)
	return nil
}

// typedEventRow is an event's VALUES row typed, as the values feed a SELECT.
const typedEventRow = "(?::text, ?::text, ?::text, ?::bigint, ?::text, ?::text, ?::text, ?::text)"

func appendEventArgs(args []any, events []attendance.Event) []any {
	for _, e := range events {
		args = append(args, e.ID, e.AccountID, e.Type, micros(e.CreatedAt), emptyNull(e.DeviceID), emptyNull(e.EmployeeID), emptyNull(e.PunchID), string(e.Payload))
	}
	return args
}

// insertReturningSeqs runs an insert of events that returns their IDs and
// sequence numbers, into seqs.
func (tx *Tx) insertReturningSeqs(ctx context.Context, query string, args []any, seqs map[string]int64) error {
	rs, err := tx.query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var evID string
		var seq int64
		if err := rs.Scan(&evID, &seq); err != nil {
			return err
		}
		seqs[evID] = seq
	}
	return rs.Err()
}

// newDelivery is a pending delivery of an event to a webhook, due at once.
func newDelivery(w attendance.Webhook, eventID string, eventSeq int64, eventType, source string, at time.Time) attendance.Delivery {
	return attendance.Delivery{
		ID: id.New(id.Delivery), AccountID: w.AccountID, WebhookID: w.ID, EventID: eventID, EventSeq: eventSeq, EventType: eventType,
		Status: attendance.DeliveryPending, ScheduledFrom: at, NextAttemptAt: at, Source: source, CreatedAt: at,
	}
}

// InsertDeliveries queues deliveries and makes their endpoints due, and
// wakes this node's dispatcher once the transaction commits.
func (tx *Tx) InsertDeliveries(ctx context.Context, ds []attendance.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	const cols = 11
	for start := 0; start < len(ds); start += insertChunk {
		chunk := ds[start:min(start+insertChunk, len(ds))]
		row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args := make([]any, 0, len(chunk)*cols)
		for _, d := range chunk {
			args = append(args, d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventSeq, d.EventType, d.Status,
				micros(d.ScheduledFrom), micros(d.NextAttemptAt), d.Source, micros(d.CreatedAt))
		}
		_, err := tx.exec(ctx, `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_seq, event_type, status,
			scheduled_from, next_attempt_at, source, created_at) VALUES `+valuesRows(row, len(chunk)), args...)
		if err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
	}
	for webhookID, at := range dueTimes(ds) {
		if _, err := tx.exec(ctx, `UPDATE webhooks SET next_due_at = ? WHERE id = ? AND (next_due_at = 0 OR next_due_at > ?)`,
			micros(at), webhookID, micros(at)); err != nil {
			return err
		}
	}
	tx.AfterCommit(tx.store.wakeDeliveries)
	return nil
}

// dueTimes is, for each endpoint of deliveries, the earliest attempt due.
func dueTimes(ds []attendance.Delivery) map[string]time.Time {
	due := map[string]time.Time{}
	for _, d := range ds {
		if t, ok := due[d.WebhookID]; !ok || d.NextAttemptAt.Before(t) {
			due[d.WebhookID] = d.NextAttemptAt
		}
	}
	return due
}

func emptyNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const eventCols = `seq, id, account_id, type, created_at, COALESCE(device_id, ''), COALESCE(employee_id, ''), COALESCE(punch_id, ''), payload`

func scanEvent(r scanner) (attendance.Event, error) {
	var e attendance.Event
	var created int64
	var payload string
	err := r.Scan(&e.Seq, &e.ID, &e.AccountID, &e.Type, &created, &e.DeviceID, &e.EmployeeID, &e.PunchID, &payload)
	e.CreatedAt, e.Payload = fromMicros(created), []byte(payload)
	return e, err
}

// EventsSince returns up to limit events of the account after seq, in
// order, of the given types (all when none).
func (s *Store) EventsSince(ctx context.Context, accountID string, seq int64, limit int, types ...string) ([]attendance.Event, error) {
	q := `SELECT ` + eventCols + ` FROM events WHERE account_id = ? AND seq > ?`
	args := []any{accountID, seq}
	if len(types) > 0 {
		in, list := s.reader().in("type", types)
		q += " AND " + in
		args = append(args, list)
	}
	return queryAll(ctx, s.reader(), scanEvent, q+` ORDER BY seq LIMIT ?`, append(args, limit)...)
}

// Event reads one event of the account.
func (s *Store) Event(ctx context.Context, accountID, eventID string) (attendance.Event, error) {
	e, err := scanEvent(s.reader().queryRow(ctx, `SELECT `+eventCols+` FROM events WHERE account_id = ? AND id = ?`, accountID, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, attendance.NotFound("event", eventID)
	}
	return e, err
}

// EventSorts are the fields event lists sort by; the first is the default.
var EventSorts = []Column{{Name: "created_at", Kind: KindInt, Expr: "seq"}}

// EventQuery selects events of one account. Zero values do not filter.
type EventQuery struct {
	Type       string
	DeviceID   string
	EmployeeID string
	From, To   time.Time // recorded time, inclusive
}

// ListEvents returns one page of the account's events, in the order they
// were recorded.
func (s *Store) ListEvents(ctx context.Context, accountID string, q EventQuery, p ListParams) (Page[attendance.Event], error) {
	l := listSQL{from: "events", cols: eventCols, tieExpr: "seq", tieKind: KindInt, countFrom: "events",
		where: []string{"account_id = ?"}, args: []any{accountID}}
	add := func(cond string, arg any) {
		l.where = append(l.where, cond)
		l.args = append(l.args, arg)
	}
	if q.Type != "" {
		add("type = ?", q.Type)
	}
	if q.DeviceID != "" {
		add("device_id = ?", q.DeviceID)
	}
	if q.EmployeeID != "" {
		add("employee_id = ?", q.EmployeeID)
	}
	if !q.From.IsZero() {
		add("created_at >= ?", micros(q.From))
	}
	if !q.To.IsZero() {
		add("created_at <= ?", micros(q.To))
	}
	return listQuery(ctx, s.reader(), l, p, scanEvent)
}

// LatestEventSeq is the sequence number of the account's newest event (0:
// none yet): where a stream of new events starts.
func (s *Store) LatestEventSeq(ctx context.Context, accountID string) (int64, error) {
	var seq sql.NullInt64
	err := s.reader().queryRow(ctx, `SELECT MAX(seq) FROM events WHERE account_id = ?`, accountID).Scan(&seq)
	return seq.Int64, err
}
