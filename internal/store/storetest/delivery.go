package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

func runDelivery(t *testing.T, b Backend) {
	t.Run("Webhooks", func(t *testing.T) { testWebhooks(t, b) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, b) })
	t.Run("EventCommitOrder", func(t *testing.T) { testEventCommitOrder(t, b) })
	t.Run("UpdateDeliveries", func(t *testing.T) { testUpdateDeliveries(t, b) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, b) })
	t.Run("RetrySlots", func(t *testing.T) { testRetrySlots(t, b) })
	t.Run("RetryDuringProbe", func(t *testing.T) { testRetryDuringProbe(t, b) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, b) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, b) })
	t.Run("Signals", func(t *testing.T) { testSignals(t, b) })
}

// NewWebhook registers a webhook for tests.
func NewWebhook(t testing.TB, s *store.Store, accountID, url string, events ...string) attendance.Webhook {
	t.Helper()
	in := attendance.WebhookInput{URL: attendance.Some(url)}
	if len(events) > 0 {
		in.Events = attendance.Some(events)
	}
	var w attendance.Webhook
	must(t, s.InTx(context.Background(), func(tx *store.Tx) (err error) {
		w, err = tx.CreateWebhook(context.Background(), accountID, in, "whsec_test_secret")
		return err
	}))
	return w
}

// RecordEvents records n events of typ for the account at the store's time
// and returns their IDs.
func RecordEvents(t testing.TB, s *store.Store, accountID, typ string, n int) []string {
	t.Helper()
	var evs []attendance.Event
	var ids []string
	for range n {
		evID := id.New(id.Event)
		evs = append(evs, attendance.Event{ID: evID, AccountID: accountID, Type: typ, CreatedAt: s.Now(),
			Payload: []byte(fmt.Sprintf(`{"event_id":%q,"event_type":%q,"metadata":{"deduplicated":false,"delivery_attempt":0}}`, evID, typ))})
		ids = append(ids, evID)
	}
	must(t, s.InTx(context.Background(), func(tx *store.Tx) error { return tx.InsertEvents(context.Background(), evs) }))
	return ids
}

func deliveriesOf(t testing.TB, s *store.Store, accountID string, q store.DeliveryList) []attendance.Delivery {
	t.Helper()
	page, err := s.ListDeliveries(context.Background(), accountID, q, store.ListParams{Sort: store.DeliverySorts[0], Limit: 500})
	must(t, err)
	return page.Items
}

// hookFixture is a store on a fake clock with an account and one webhook
// subscribed to every event.
func hookFixture(t *testing.T, b Backend) (context.Context, *Clock, *store.Store, attendance.Account, attendance.Webhook) {
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	a, _ := NewAccount(t, s, "Acme")
	return context.Background(), clock, s, a, NewWebhook(t, s, a.ID, "https://a.example/hook")
}

func testWebhooks(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	a, _ := NewAccount(t, s, "Acme")
	o, _ := NewAccount(t, s, "Other")
	w := NewWebhook(t, s, a.ID, "https://a.example/hook", attendance.EventAttendancePunch)
	got, err := s.Webhook(ctx, a.ID, w.ID)
	must(t, err)
	if got.URL != w.URL || got.Secret != "whsec_test_secret" || len(got.Events) != 1 || !got.Enabled || got.State != attendance.WebhookHealthy {
		t.Fatalf("read back %+v", got)
	}
	if _, err := s.Webhook(ctx, o.ID, w.ID); attendance.ErrorCode(err) != attendance.CodeResourceNotFound {
		t.Fatalf("another account reads the webhook: %v", err)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.UpdateWebhook(ctx, a.ID, w.ID, attendance.WebhookInput{Events: attendance.Some([]string{"*"}), Enabled: attendance.Some(false)})
		if err == nil && (u.Enabled || u.DisabledReason == "" || u.Events[0] != "*") {
			err = fmt.Errorf("updated %+v", u)
		}
		return err
	}))
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		r, err := tx.RotateSecret(ctx, a.ID, w.ID, "whsec_new_secret", time.Hour)
		if err == nil && (r.Secret != "whsec_new_secret" || r.PreviousSecret != "whsec_test_secret" || len(r.Secrets(s.Now())) != 2 || len(r.Secrets(s.Now().Add(2*time.Hour))) != 1) {
			err = fmt.Errorf("rotated %+v", r)
		}
		return err
	}))
	page, err := s.ListWebhooks(ctx, a.ID, store.ListParams{Sort: store.WebhookSorts[0], Limit: 10})
	must(t, err)
	if len(page.Items) != 1 || page.Total != 1 {
		t.Fatalf("list %+v", page)
	}
	err = s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(ctx, o.ID, w.ID) })
	wantCode(t, err, attendance.CodeResourceNotFound)
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(ctx, a.ID, w.ID) }))
	if _, err := s.Webhook(ctx, a.ID, w.ID); attendance.ErrorCode(err) != attendance.CodeResourceNotFound {
		t.Fatalf("deleted webhook still read: %v", err)
	}
	for i := range attendance.MaxWebhooksPerAccount {
		NewWebhook(t, s, a.ID, fmt.Sprintf("https://a.example/%d", i))
	}
	err = s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateWebhook(ctx, a.ID, attendance.WebhookInput{URL: attendance.Some("https://a.example/x")}, "whsec_x_secret")
		return err
	})
	wantCode(t, err, attendance.CodeTooManyWebhooks)
}

// testOutbox: an event gets a delivery per enabled, subscribed webhook of
// its account, in its transaction, and makes the webhook due.
func testOutbox(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	a, _ := NewAccount(t, s, "Acme")
	o, _ := NewAccount(t, s, "Other")
	punches := NewWebhook(t, s, a.ID, "https://a.example/punches", attendance.EventAttendancePunch)
	all := NewWebhook(t, s, a.ID, "https://a.example/all")
	off := NewWebhook(t, s, a.ID, "https://a.example/off")
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateWebhook(ctx, a.ID, off.ID, attendance.WebhookInput{Enabled: attendance.Some(false)})
		return err
	}))
	other := NewWebhook(t, s, o.ID, "https://o.example/all")

	// A rolled-back event leaves no delivery.
	err := s.InTx(ctx, func(tx *store.Tx) error {
		evs := []attendance.Event{{ID: id.New(id.Event), AccountID: a.ID, Type: attendance.EventAttendancePunch, CreatedAt: clock.Now(), Payload: []byte(`{}`)}}
		if err := tx.InsertEvents(ctx, evs); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("expected the rollback error")
	}
	if ds := deliveriesOf(t, s, a.ID, store.DeliveryList{}); len(ds) != 0 {
		t.Fatalf("a rolled-back event left %d deliveries", len(ds))
	}

	punch := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 2)
	status := RecordEvents(t, s, a.ID, attendance.EventDeviceStatus, 1)
	count := func(w attendance.Webhook) int {
		return len(deliveriesOf(t, s, w.AccountID, store.DeliveryList{WebhookID: w.ID}))
	}
	if count(punches) != 2 || count(all) != 3 || count(off) != 0 || count(other) != 0 {
		t.Fatalf("fan-out: punches %d all %d disabled %d other account %d", count(punches), count(all), count(off), count(other))
	}
	head, err := s.QueueHead(ctx, all.ID, 10)
	must(t, err)
	if len(head) != 3 || head[0].EventID != punch[0] || head[1].EventID != punch[1] || head[2].EventID != status[0] || head[0].Payload == nil {
		t.Fatalf("queue head %+v", head)
	}
	// Each delivery carries its event's sequence number, which orders the queue.
	recorded, err := s.EventsSince(ctx, a.ID, 0, 10)
	must(t, err)
	seqOf := map[string]int64{}
	for _, e := range recorded {
		seqOf[e.ID] = e.Seq
	}
	for _, d := range head {
		if d.EventSeq != seqOf[d.EventID] || d.EventSeq == 0 {
			t.Fatalf("delivery of %s: event seq %d, the event's is %d", d.EventID, d.EventSeq, seqOf[d.EventID])
		}
	}
	if next, err := s.NextWebhookDue(ctx); err != nil || !next.Equal(clock.Now()) {
		t.Fatalf("next due %v %v", next, err)
	}
	// Redeliver: one more delivery, to the subscribed endpoints only.
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		ds, err := tx.Redeliver(ctx, a.ID, status[0], nil)
		if err == nil && (len(ds) != 1 || ds[0].WebhookID != all.ID || ds[0].Source != attendance.SourceRedeliver) {
			err = fmt.Errorf("redelivered %+v", ds)
		}
		return err
	}))
	err = s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.Redeliver(ctx, o.ID, status[0], nil); return err })
	wantCode(t, err, attendance.CodeResourceNotFound)
	// Events list and stream reads.
	evs, err := s.EventsSince(ctx, a.ID, 0, 10, attendance.EventDeviceStatus)
	must(t, err)
	if len(evs) != 1 || evs[0].ID != status[0] {
		t.Fatalf("events since: %+v", evs)
	}
	latest, err := s.LatestEventSeq(ctx, a.ID)
	must(t, err)
	if latest != evs[0].Seq {
		t.Fatalf("latest seq %d, want %d", latest, evs[0].Seq)
	}
	if n, _ := s.LatestEventSeq(ctx, "acct_none"); n != 0 {
		t.Fatalf("latest seq of no account %d", n)
	}
}

// testLeases: one owner at a time sends to an endpoint; an expired lease is
// taken over, and the old owner can then commit nothing.
func testLeases(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 1)

	first, err := s.ClaimDueWebhooks(ctx, "node-1", 15*time.Second, 10)
	must(t, err)
	second, err := s.ClaimDueWebhooks(ctx, "node-2", 15*time.Second, 10)
	must(t, err)
	if len(first) != 1 || first[0].ID != w.ID || len(second) != 0 {
		t.Fatalf("claims: node-1 %d, node-2 %d", len(first), len(second))
	}
	// A leased endpoint is its holder's: no other node need try to claim it.
	if next, err := s.NextWebhookDue(ctx); err != nil || !next.IsZero() {
		t.Fatalf("next due with the only endpoint leased: %v %v", next, err)
	}
	clock.Advance(10 * time.Second)
	ok, err := s.RenewLease(ctx, w.ID, "node-1", clock.Now().Add(15*time.Second))
	must(t, err)
	if !ok {
		t.Fatal("the owner could not renew")
	}
	clock.Advance(10 * time.Second)
	if second, _ = s.ClaimDueWebhooks(ctx, "node-2", 15*time.Second, 10); len(second) != 0 {
		t.Fatal("a renewed lease was taken")
	}
	clock.Advance(20 * time.Second) // node-1 went silent
	if next, err := s.NextWebhookDue(ctx); err != nil || next.IsZero() {
		t.Fatalf("next due once the lease ran out: %v %v", next, err)
	}
	if second, _ = s.ClaimDueWebhooks(ctx, "node-2", 15*time.Second, 10); len(second) != 1 {
		t.Fatal("an expired lease was not taken over")
	}
	if ok, _ := s.RenewLease(ctx, w.ID, "node-1", clock.Now().Add(time.Minute)); ok {
		t.Fatal("the old owner renewed a lease it lost")
	}
	err = s.InTx(ctx, func(tx *store.Tx) error { return tx.SaveWebhookState(ctx, &first[0], "node-1", true) })
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the old owner saved state: %v", err)
	}
	// Released with its queue healthy and non-empty, it is due at once.
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.SaveWebhookState(ctx, &second[0], "node-2", true) }))
	if second[0].NextDueAt != clock.Now() {
		t.Fatalf("released endpoint due %v, want now", second[0].NextDueAt)
	}
	if again, _ := s.ClaimDueWebhooks(ctx, "node-3", 15*time.Second, 10); len(again) != 1 {
		t.Fatal("a released endpoint was not claimable")
	}
}

// testRetrySlots: a failed probe consumes the due slots of the queue; what
// has no slot left fails, and retry puts it back.
func testRetrySlots(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	slots := []time.Duration{0, time.Minute, 5 * time.Minute, time.Hour}
	early := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 1)
	clock.Advance(3 * time.Minute)
	late := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 1)

	consume := func() []string {
		var failed []string
		must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
			failed, err = tx.ConsumeDueSlots(ctx, w.ID, clock.Now(), slots, "probe failed")
			return err
		}))
		return failed
	}
	byEvent := func() map[string]attendance.Delivery {
		out := map[string]attendance.Delivery{}
		for _, d := range deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID}) {
			out[d.EventID] = d
		}
		return out
	}
	if failed := consume(); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	ds := byEvent()
	// early (recorded 3m ago): its 1m slot passed, next is 5m; late: next is 1m.
	if d := ds[early[0]]; d.Slot != 2 || !d.NextAttemptAt.Equal(Epoch.Add(5*time.Minute)) || d.LastError != "probe failed" {
		t.Fatalf("early %+v", d)
	}
	if d := ds[late[0]]; d.Slot != 1 || !d.NextAttemptAt.Equal(Epoch.Add(4*time.Minute)) {
		t.Fatalf("late %+v", d)
	}
	clock.Set(Epoch.Add(time.Hour))
	failed := consume()
	if len(failed) != 1 || failed[0] != early[0] {
		t.Fatalf("at early's final slot failed %v", failed)
	}
	ds = byEvent()
	if d := ds[early[0]]; d.Status != attendance.DeliveryFailed || !d.FailedAt.Equal(clock.Now()) {
		t.Fatalf("early %+v", d)
	}
	if d := ds[late[0]]; d.Status != attendance.DeliveryPending || !d.NextAttemptAt.Equal(Epoch.Add(63*time.Minute)) {
		t.Fatalf("late %+v", d)
	}
	// Retry: the failure of the last 72 h back in the queue, due now.
	var n int
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		n, err = tx.RequeueFailed(ctx, a.ID, w.ID, clock.Now().Add(-72*time.Hour))
		return err
	}))
	d := byEvent()[early[0]]
	if n != 1 || d.Status != attendance.DeliveryPending || d.Slot != 0 || !d.ScheduledFrom.Equal(clock.Now()) || d.Source != attendance.SourceRetry {
		t.Fatalf("requeued %d: %+v", n, d)
	}
	if due, _ := s.QueueDue(ctx, w.ID, clock.Now()); !due {
		t.Fatal("after retry the queue is not due")
	}
	// Deleting the webhook fails what is pending.
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(ctx, a.ID, w.ID) }))
	for _, d := range byEvent() {
		if d.Status != attendance.DeliveryFailed {
			t.Fatalf("after delete: %+v", d)
		}
	}
}

// testRetryDuringProbe: a retry asked for while a probe is under way — its
// request sent before the receiver came back, its failure committed after
// the retry — is not answered by that probe: the queue's head is due again
// once the probe's outcome is committed. A probe that began after the retry
// answers it.
func testRetryDuringProbe(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	slots := []time.Duration{0, time.Minute, 5 * time.Minute}
	RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 2)
	// probe is a dispatcher step that began at start, sent the head and
	// failed, and commits now: the head moves to its next slot.
	probe := func(start time.Time) (answered bool) {
		t.Helper()
		head, err := s.QueueHead(ctx, w.ID, 1)
		must(t, err)
		d := head[0]
		d.Attempts++
		d.Slot, d.NextAttemptAt, d.LastAttemptAt, d.LastStatusCode = 1, d.ScheduledFrom.Add(slots[1]), start, 503
		hook := w
		hook.State, hook.FailingSince, hook.NotBefore = attendance.WebhookFailing, start, start.Add(time.Hour) // with Retry-After
		must(t, s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.UpdateDeliveries(ctx, []*attendance.Delivery{&d}); err != nil {
				return err
			}
			if _, err := tx.ConsumeDueSlots(ctx, w.ID, start, slots, "503"); err != nil {
				return err
			}
			var err error
			if answered, err = tx.AnswerProbeRequest(ctx, w.ID, start); err != nil {
				return err
			}
			if answered {
				hook.NotBefore = time.Time{}
			}
			return tx.SaveWebhookState(ctx, &hook, "", false)
		}))
		return answered
	}
	retry := func() {
		t.Helper()
		must(t, s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.RequeueFailed(ctx, a.ID, w.ID, time.Time{}); return err }))
	}
	wantDue := func(want bool, what string) {
		t.Helper()
		due, err := s.QueueDue(ctx, w.ID, clock.Now())
		must(t, err)
		next, err := s.NextWebhookDue(ctx)
		must(t, err)
		if dueNow := !next.IsZero() && !next.After(clock.Now()); due != want || dueNow != want {
			t.Fatalf("%s: queue due %v, endpoint next due %v at %v; want due %v", what, due, next, clock.Now(), want)
		}
	}

	// No retry: the failed probe leaves the queue for its next slot.
	clock.Advance(time.Second)
	if probe(clock.Now()) {
		t.Fatal("a probe answered a retry nobody asked for")
	}
	wantDue(false, "after a failed probe")

	// The receiver is back; a probe is already on its way when the retry is
	// asked for, and its failure is committed after the retry's.
	clock.Advance(time.Second)
	start := clock.Now()
	clock.Advance(100 * time.Millisecond)
	retry()
	clock.Advance(100 * time.Millisecond)
	if !probe(start) {
		t.Fatal("a probe begun before the retry answered it")
	}
	wantDue(true, "after a retry during a failed probe")

	// A probe begun after the retry answers it.
	clock.Advance(time.Second)
	if probe(clock.Now()) {
		t.Fatal("a probe begun after the retry did not answer it")
	}
	wantDue(false, "after a failed probe begun after the retry")
}

func testReplay(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	old := RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 3)
	RecordEvents(t, s, a.ID, attendance.EventDeviceStatus, 2)
	clock.Advance(time.Hour)
	RecordEvents(t, s, a.ID, attendance.EventAttendancePunch, 1) // outside the range
	r := attendance.Replay{AccountID: a.ID, WebhookID: w.ID, Start: Epoch, End: Epoch.Add(time.Minute), EventTypes: []string{attendance.EventAttendancePunch}}
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.CreateReplay(ctx, &r) }))
	if r.Total != 3 || r.Status != attendance.ReplayRunning {
		t.Fatalf("replay %+v", r)
	}
	for {
		_, did, err := s.AdvanceReplay(ctx)
		must(t, err)
		if !did {
			break
		}
	}
	got, err := s.Replay(ctx, a.ID, w.ID, r.ID)
	must(t, err)
	if got.Status != attendance.ReplayCompleted || got.Enqueued != 3 {
		t.Fatalf("replay after running %+v", got)
	}
	var replayed []string
	for _, d := range deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID}) {
		if d.Source == attendance.SourceReplay {
			replayed = append(replayed, d.EventID)
		}
	}
	if fmt.Sprint(replayed) != fmt.Sprint(old) {
		t.Fatalf("replayed %v, want %v", replayed, old)
	}
	o, _ := NewAccount(t, s, "Other")
	if _, err := s.Replay(ctx, o.ID, w.ID, r.ID); attendance.ErrorCode(err) != attendance.CodeResourceNotFound {
		t.Fatalf("another account reads the replay: %v", err)
	}
}

func testNotifications(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	a, _ := NewAccount(t, s, "Acme")
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		return tx.QueueNotification(ctx, attendance.Notification{AccountID: a.ID, Recipient: a.Email, Subject: "s", Body: "b"})
	}))
	n, ok, err := s.ClaimNotification(ctx, time.Minute)
	must(t, err)
	if !ok || n.Recipient != a.Email {
		t.Fatalf("claim %+v %v", n, ok)
	}
	if _, ok, _ := s.ClaimNotification(ctx, time.Minute); ok {
		t.Fatal("a leased e-mail was claimed twice")
	}
	must(t, s.FinishNotification(ctx, n, errors.New("smtp down"), clock.Now().Add(time.Minute)))
	if _, ok, _ := s.ClaimNotification(ctx, time.Minute); ok {
		t.Fatal("an e-mail was claimed before its retry time")
	}
	clock.Advance(time.Minute)
	n, ok, _ = s.ClaimNotification(ctx, time.Minute)
	if !ok || n.Attempts != 1 || n.LastError != "smtp down" {
		t.Fatalf("retry claim %+v %v", n, ok)
	}
	must(t, s.FinishNotification(ctx, n, nil, time.Time{}))
	list, err := s.Notifications(ctx, a.ID)
	must(t, err)
	if len(list) != 1 || list[0].Status != "sent" || list[0].SentAt.IsZero() {
		t.Fatalf("outbox %+v", list)
	}
}

// testEventCommitOrder: transactions recording events of one account run
// side by side, each still working after recording its event; a reader
// follows the account's events by sequence number meanwhile. Events become
// visible in the order of their sequence numbers, so the reader, which
// never looks back, misses none.
func testEventCommitOrder(t *testing.T, b Backend) {
	s := b.Open(t, store.Options{})
	a, _ := NewAccount(t, s, "Acme")
	ctx := context.Background()
	const writers, each = 8, 25
	done := make(chan struct{})
	var seen []string
	readerDone := make(chan error, 1)
	go func() {
		var last int64
		for {
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			evs, err := s.EventsSince(ctx, a.ID, last, 500)
			if err != nil {
				readerDone <- err
				return
			}
			for _, e := range evs {
				seen = append(seen, e.ID)
				last = e.Seq
			}
			if finished && len(evs) == 0 {
				readerDone <- nil
				return
			}
		}
	}()
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				err := s.InTx(ctx, func(tx *store.Tx) error {
					evID := id.New(id.Event)
					if err := tx.InsertEvents(ctx, []attendance.Event{{ID: evID, AccountID: a.ID, Type: attendance.EventDeviceStatus,
						CreatedAt: s.Now(), Payload: []byte(`{}`)}}); err != nil {
						return err
					}
					// More work after the event, longer for some.
					time.Sleep(time.Duration((w*7+i)%3) * time.Millisecond)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		must(t, <-errs)
	}
	close(done)
	must(t, <-readerDone)
	all, err := s.EventsSince(ctx, a.ID, 0, writers*each+1)
	must(t, err)
	if len(all) != writers*each {
		t.Fatalf("%d events stored, want %d", len(all), writers*each)
	}
	if len(seen) != len(all) {
		t.Fatalf("a reader following by sequence number saw %d of %d events: some became visible after later ones", len(seen), len(all))
	}
}

// testUpdateDeliveries: one call writes each delivery's own outcome, every
// field, and leaves the others alone.
func testUpdateDeliveries(t *testing.T, b Backend) {
	ctx, clock, s, a, w := hookFixture(t, b)
	RecordEvents(t, s, a.ID, attendance.EventDeviceStatus, 4)
	ds := deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID})
	if len(ds) != 4 {
		t.Fatalf("%d deliveries, want 4", len(ds))
	}
	now := clock.Now()
	ds[0].Status, ds[0].Attempts, ds[0].LastAttemptAt, ds[0].LastStatusCode, ds[0].DeliveredAt = attendance.DeliveryDelivered, 1, now, 200, now.Add(time.Millisecond)
	ds[1].Isolated, ds[1].Attempts, ds[1].Slot, ds[1].NextAttemptAt, ds[1].LastStatusCode, ds[1].LastError =
		true, 2, 3, now.Add(time.Hour), 422, `rejected: "bad" payload`
	ds[2].Status, ds[2].Attempts, ds[2].Slot, ds[2].FailedAt, ds[2].LastError, ds[2].NextAttemptAt =
		attendance.DeliveryFailed, 9, 9, now, "connection refused", time.Time{}
	want := slices.Clone(ds)
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		return tx.UpdateDeliveries(ctx, []*attendance.Delivery{&ds[0], &ds[1], &ds[2]})
	}))
	got := deliveriesOf(t, s, a.ID, store.DeliveryList{WebhookID: w.ID})
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Status != w.Status || g.Isolated != w.Isolated || g.Attempts != w.Attempts || g.Slot != w.Slot ||
			!g.NextAttemptAt.Equal(w.NextAttemptAt) || !g.LastAttemptAt.Equal(w.LastAttemptAt) || g.LastStatusCode != w.LastStatusCode ||
			g.LastError != w.LastError || !g.DeliveredAt.Equal(w.DeliveredAt) || !g.FailedAt.Equal(w.FailedAt) {
			t.Errorf("delivery %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// testSignals: a node hears at once of the events and deliveries another
// node commits (PostgreSQL: RunSignals), also after the connections that
// carry the signals were cut; on SQLite, one node, RunSignals returns at once.
func testSignals(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.NewURL(t)
	if s := OpenURL(t, u, store.Options{}); s.Dialect() != store.Postgres {
		s.RunSignals(ctx, slog.New(slog.DiscardHandler))
		return
	}
	n := StartSignalNodes(t, u)
	s1, s2 := n.S1, n.S2
	heard := func(what string) { t.Helper(); n.Heard(t, what) }
	a, _ := NewAccount(t, s2, "Acme")
	w := NewWebhook(t, s2, a.ID, "https://a.example/hook")
	// settle lets signals still on their way arrive (a commit may be
	// announced twice, 20 ms apart), so that the next one heard is the next
	// action's. A straggler later than this could only make the test weaker.
	settle := func() {
		for {
			select {
			case <-s1.OthersQueued():
			case <-time.After(200 * time.Millisecond):
				return
			}
		}
	}
	// Node 1's listener wakes it once connected, for what it may have missed.
	heard("that it listens")
	if !s1.SignalsListening() {
		t.Fatal("node 1 heard that it listens, but does not say so")
	}
	settle()
	recorded := s1.EventsRecorded()
	RecordEvents(t, s2, a.ID, attendance.EventAttendancePunch, 1)
	heard("node 2's events")
	select {
	case <-recorded:
	default:
		t.Fatal("node 1's event streams were not woken")
	}
	// Retry queues deliveries without events: heard too.
	retry := func() {
		must(t, s2.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.RequeueFailed(ctx, a.ID, w.ID, time.Time{})
			return err
		}))
	}
	settle()
	retry()
	heard("node 2's retry")

	// The connections carrying the signals are cut (a PostgreSQL restart, a
	// proxy's timeout): node 1 listens again at once; node 2's notifying
	// connection learns it was cut when it next sends, and sends the signal
	// it could not send on its next connection.
	parsed, err := url.Parse(u)
	must(t, err)
	schema := parsed.Query().Get("search_path")
	db, err := sql.Open("pgx", u)
	must(t, err)
	defer db.Close()
	pids := func(names ...string) map[int]bool {
		t.Helper()
		out := map[int]bool{}
		for _, pid := range BackendPIDs(t, db, names...) {
			out[pid] = true
		}
		return out
	}
	listen, notify := "punchconnect listen "+schema, "punchconnect notify "+schema
	var old map[int]bool
	for range 500 { // node 1's notifying connection may still be connecting
		if old = pids(listen, notify); len(old) == 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(old) != 4 {
		t.Fatalf("%d signal connections, want 4 (two a node)", len(old))
	}
	var cut int
	must(t, db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name IN ($1, $2)`,
		listen, notify).Scan(&cut))
	if cut != 4 {
		t.Fatalf("cut %d signal connections, want 4", cut)
	}
	reconnected := func() bool {
		now := pids(listen)
		for pid := range now {
			if old[pid] {
				return false
			}
		}
		return len(now) == 2 && s1.SignalsListening()
	}
	for range 500 {
		if reconnected() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !reconnected() {
		t.Fatal("the nodes did not listen again on new connections")
	}
	settle()
	retry()
	heard("node 2's retry after reconnecting")
	n.Stop()
	if s1.SignalsListening() {
		t.Fatal("node 1 says it listens after RunSignals returned")
	}
}

// SignalNodes are two stores on one PostgreSQL database, each running
// RunSignals, as two nodes do.
type SignalNodes struct {
	S1, S2 *store.Store
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartSignalNodes opens two stores at u and runs their signals until Stop
// or the end of the test.
func StartSignalNodes(t *testing.T, u string) *SignalNodes {
	t.Helper()
	n := &SignalNodes{S1: OpenURL(t, u, store.Options{}), S2: OpenURL(t, u, store.Options{})}
	if n.S1.SignalsListening() {
		t.Fatal("listening before RunSignals")
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	log := slog.New(slog.DiscardHandler)
	n.wg.Go(func() { n.S1.RunSignals(ctx, log) })
	n.wg.Go(func() { n.S2.RunSignals(ctx, log) })
	t.Cleanup(n.Stop)
	return n
}

// Stop ends both nodes' signals and waits for them.
func (n *SignalNodes) Stop() {
	n.cancel()
	n.wg.Wait()
}

// Heard waits (bounded) until node 1 hears of another node's commit.
func (n *SignalNodes) Heard(t *testing.T, what string) {
	t.Helper()
	select {
	case <-n.S1.OthersQueued():
	case <-time.After(10 * time.Second):
		t.Fatalf("node 1 did not hear %s", what)
	}
}

// BackendPIDs lists, in order, the PostgreSQL backends whose connections
// carry one of the application names (as signal connections do).
func BackendPIDs(t testing.TB, db *sql.DB, applicationNames ...string) []int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1) ORDER BY pid`, applicationNames)
	must(t, err)
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		must(t, rows.Scan(&pid))
		pids = append(pids, pid)
	}
	must(t, rows.Err())
	return pids
}
