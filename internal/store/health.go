package store

import (
	"context"
	"time"
)

// Backlog is the state of the work queues across the whole cluster (every
// node reads the same database), for the gauges operators alert on.
type Backlog struct {
	// DeliveriesPending counts deliveries not yet delivered nor given up;
	// OldestPending is how long the oldest of them has waited (zero when
	// none waits).
	DeliveriesPending int64
	OldestPending     time.Duration
	// Endpoints counts live webhook endpoints by state: healthy, failing,
	// disabled.
	Endpoints map[string]int64
	// Devices counts live devices by status: pending, online, offline.
	Devices map[string]int64
	// CommandsOpen counts commands by open status: queued, sent.
	CommandsOpen map[string]int64
	// NotificationsPending counts e-mails not yet sent nor given up.
	NotificationsPending int64
	// ReplaysRunning counts replay jobs in progress.
	ReplaysRunning int64
}

type labelCount struct {
	label string
	n     int64
}

func scanLabelCount(r scanner) (labelCount, error) {
	var lc labelCount
	err := r.Scan(&lc.label, &lc.n)
	return lc, err
}

// counts runs a "label, count" query into a map that has every label of
// labels, at zero when absent.
func counts(ctx context.Context, c conn, labels []string, query string) (map[string]int64, error) {
	rows, err := queryAll(ctx, c, scanLabelCount, query)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(labels))
	for _, l := range labels {
		out[l] = 0
	}
	for _, r := range rows {
		out[r.label] += r.n
	}
	return out, nil
}

// Backlog reads the queues' sizes. Each count follows a partial index of
// the rows still open, so it costs what is waiting, not what is stored.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	c := s.reader()
	var b Backlog
	var oldest int64
	if err := c.queryRow(ctx, `SELECT count(*), coalesce(min(created_at), 0) FROM deliveries WHERE status = 'pending'`).
		Scan(&b.DeliveriesPending, &oldest); err != nil {
		return b, err
	}
	if oldest > 0 {
		b.OldestPending = max(0, s.Now().Sub(fromMicros(oldest)))
	}
	var err error
	if b.Endpoints, err = counts(ctx, c, []string{"healthy", "failing", "disabled"}, `SELECT
		CASE WHEN NOT enabled THEN 'disabled' ELSE state END, count(*)
		FROM webhooks WHERE deleted_at IS NULL GROUP BY 1`); err != nil {
		return b, err
	}
	if b.Devices, err = counts(ctx, c, []string{"pending", "online", "offline"},
		`SELECT status, count(*) FROM devices WHERE deleted_at IS NULL GROUP BY status`); err != nil {
		return b, err
	}
	if b.CommandsOpen, err = counts(ctx, c, []string{"queued", "sent"},
		`SELECT status, count(*) FROM commands WHERE status IN ('queued', 'sent') GROUP BY status`); err != nil {
		return b, err
	}
	if err := c.queryRow(ctx, `SELECT count(*) FROM notifications WHERE status = 'pending'`).Scan(&b.NotificationsPending); err != nil {
		return b, err
	}
	if err := c.queryRow(ctx, `SELECT count(*) FROM replays WHERE status = 'running'`).Scan(&b.ReplaysRunning); err != nil {
		return b, err
	}
	return b, nil
}
