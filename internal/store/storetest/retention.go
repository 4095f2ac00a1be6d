package storetest

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

func runRetention(t *testing.T, b Backend) {
	t.Run("Retention", func(t *testing.T) { testRetention(t, b) })
	t.Run("Duty", func(t *testing.T) { testDuty(t, b) })
}

// testRetention: old records go, young ones and events a delivery still
// waits for stay.
func testRetention(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	old := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 3)
	// The old events' deliveries: two delivered, one still pending.
	var ds []attendance.Delivery
	for _, d := range deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID}) {
		ds = append(ds, d)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		for i := range ds[:2] {
			ds[i].Status, ds[i].Attempts, ds[i].DeliveredAt = attendance.DeliveryDelivered, 1, clock.Now()
		}
		if err := tx.UpdateDeliveries(ctx, []*attendance.Delivery{&ds[0], &ds[1]}); err != nil {
			return err
		}
		return tx.InsertAttempts(ctx, []attendance.Attempt{{DeliveryID: ds[0].ID, Attempt: 1, StartedAt: clock.Now(), StatusCode: 200}})
	}))
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		return tx.KeepUpload(ctx, a.ID, "dev_x", "photo", "", []byte("jpeg"), "")
	}))
	clock.Advance(100 * 24 * time.Hour)
	young := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 2)

	r, err := s.ApplyRetention(ctx, store.Retention{Events: 90 * 24 * time.Hour, Attempts: 30 * 24 * time.Hour, Uploads: 30 * 24 * time.Hour})
	must(t, err)
	if r.Events != 2 || r.Uploads != 1 {
		t.Fatalf("retention deleted %+v, want 2 events and 1 upload", r)
	}
	for _, id := range old[:2] {
		if _, err := s.Event(ctx, a.ID, id); attendance.ErrorCode(err) != attendance.CodeResourceNotFound {
			t.Fatalf("old delivered event %s kept: %v", id, err)
		}
	}
	for _, id := range append([]string{old[2]}, young...) {
		if _, err := s.Event(ctx, a.ID, id); err != nil {
			t.Fatalf("event %s deleted: %v", id, err)
		}
	}
	left := deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID})
	if len(left) != 3 {
		t.Fatalf("%d deliveries left, want the pending one and the 2 young", len(left))
	}
	// Zero keeps forever.
	r, err = s.ApplyRetention(ctx, store.Retention{})
	must(t, err)
	if r != (store.RetentionResult{}) {
		t.Fatalf("zero retention deleted %+v", r)
	}
}

// testDuty: one node at a time runs a duty; another may once it is done.
func testDuty(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.NewURL(t)
	s1 := OpenURL(t, u, store.Options{})
	s2 := OpenURL(t, u, store.Options{})
	if s1.Dialect() != store.Postgres {
		ran := false
		must(t, s1.Duty(ctx, "x", func(context.Context) error { ran = true; return nil }))
		if !ran {
			t.Fatal("duty did not run")
		}
		return
	}
	inside, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = s1.Duty(ctx, "housekeeping", func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
	})
	<-inside
	if err := s2.Duty(ctx, "housekeeping", func(context.Context) error { return nil }); !errors.Is(err, store.ErrDutyTaken) {
		t.Fatalf("second node ran the duty: %v", err)
	}
	must(t, s2.Duty(ctx, "another", func(context.Context) error { return nil }))
	// Another deployment, in a schema of its own in the same database, runs
	// its own.
	other := OpenURL(t, b.NewURL(t), store.Options{})
	must(t, other.Duty(ctx, "housekeeping", func(context.Context) error { return nil }))

	// The node doing the duty dies (its database session ends, as when the
	// process is killed): another node takes the duty over at once.
	db, err := sql.Open("pgx", u)
	must(t, err)
	defer db.Close()
	parsed, err := url.Parse(u)
	must(t, err)
	var killed int
	must(t, db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND ((classid::bigint << 32) | objid::bigint) = $1 AND objsubid = 1`,
		store.DutyKey(parsed.Query().Get("search_path"), "housekeeping")).Scan(&killed))
	if killed == 0 {
		t.Fatal("no session held the duty's lock")
	}
	took := false
	for range 50 { // the server frees the lock as the session ends
		if err := s2.Duty(ctx, "housekeeping", func(context.Context) error { took = true; return nil }); err == nil {
			break
		} else if !errors.Is(err, store.ErrDutyTaken) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !took {
		t.Fatal("the duty stayed taken after its node died")
	}
	close(release)
	wg.Wait()
	must(t, s2.Duty(ctx, "housekeeping", func(context.Context) error { return nil }))
}
