package delivery_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/mail"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// received is one request a receiver got.
type received struct {
	EventID string
	Attempt int
	Header  http.Header
	Body    []byte
	Status  int // what the receiver answered
}

// receiver is a webhook endpoint on loopback whose answers a test decides.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r received) int // status to answer; nil: 200
	more   chan struct{}
}

// rejecting answers 422 to the event *poison names and otherwise to the
// others. The receiver calls it under its lock: set *poison under rc.mu.
func rejecting(poison *string, otherwise int) func(received) int {
	return func(r received) int {
		if r.EventID == *poison {
			return http.StatusUnprocessableEntity
		}
		return otherwise
	}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{more: make(chan struct{}, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			EventID  string `json:"event_id"`
			Metadata struct {
				DeliveryAttempt int `json:"delivery_attempt"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(body, &ev)
		got := received{EventID: ev.EventID, Attempt: ev.Metadata.DeliveryAttempt, Header: r.Header.Clone(), Body: body}
		rc.mu.Lock()
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(got)
		}
		got.Status = status
		rc.got = append(rc.got, got)
		rc.mu.Unlock()
		select {
		case rc.more <- struct{}{}:
		default:
		}
		if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "600")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%d}`, status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setAnswer(f func(received) int) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor waits (in real time, bounded) until cond holds on the requests.
func (rc *receiver) waitFor(t *testing.T, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		got := rc.requests()
		if cond(got) {
			return got
		}
		select {
		case <-rc.more:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d requests", what, len(got))
		}
	}
}

// waitN waits for at least n requests.
func (rc *receiver) waitN(t *testing.T, n int) []received {
	t.Helper()
	return rc.waitFor(t, fmt.Sprintf("%d requests", n), func(got []received) bool { return len(got) >= n })
}

// quiet asserts no request arrives for a while (the negative half of a
// schedule check: nothing is sent before its slot).
func (rc *receiver) quiet(t *testing.T, n int) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if got := rc.requests(); len(got) != n {
		t.Fatalf("got %d requests, want still %d", len(got), n)
	}
}

// delivered lists the events the receiver took (answered 2xx), in the order
// it took them, each once.
func delivered(got []received) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range got {
		if r.Status < 300 && !seen[r.EventID] {
			seen[r.EventID] = true
			out = append(out, r.EventID)
		}
	}
	return out
}

type harness struct {
	t       *testing.T
	clock   *storetest.Clock
	store   *store.Store
	account attendance.Account
	disp    *delivery.Dispatcher
	sink    *mail.Sink
	slots   []time.Duration
	batch   int // deliveries a step sends; 0: the default
}

func newHarness(t *testing.T, b storetest.Backend) *harness { return newHarnessBatch(t, b, 0) }

func newHarnessBatch(t *testing.T, b storetest.Backend, batch int) *harness {
	clock := storetest.NewClock(storetest.Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	acct, _ := storetest.NewAccount(t, s, "Acme")
	h := &harness{t: t, clock: clock, store: s, account: acct, batch: batch}
	h.slots, _ = delivery.ParseSchedule(delivery.DefaultSchedule)
	sink, err := mail.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	h.sink = sink
	h.start(t, "node-1")
	return h
}

// start runs a dispatcher (and notifier) as one node until the test ends.
func (h *harness) start(t *testing.T, owner string) *delivery.Dispatcher {
	mailer, err := mail.NewSMTP(h.sink.URL, "alerts@punchconnect.test")
	if err != nil {
		t.Fatal(err)
	}
	notifier := delivery.NewNotifier(h.store, mailer, quiet, h.clock.Now)
	notifier.Poll = 20 * time.Millisecond
	sender := delivery.NewSender(time.Second, true, "test", h.clock.Now)
	d, err := delivery.NewDispatcher(delivery.Config{
		Store: h.store, Sender: sender, Logger: quiet, Now: h.clock.Now, Slots: h.slots, PublicURL: "http://api.test", Owner: owner,
		Poll: 10 * time.Millisecond, Linger: 30 * time.Millisecond, Notify: notifier.Kick, BatchSize: h.batch,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	wg.Go(func() { d.RunReplays(ctx) })
	wg.Go(func() { notifier.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sender.Close()
	})
	if h.disp == nil {
		h.disp = d
	}
	return d
}

func (h *harness) webhook(url string, events ...string) attendance.Webhook {
	h.t.Helper()
	return h.webhookFor(h.account.ID, url, events...)
}

func (h *harness) webhookFor(accountID, url string, events ...string) attendance.Webhook {
	h.t.Helper()
	in := attendance.WebhookInput{URL: attendance.Field[string]{Set: true, Value: url}}
	if len(events) > 0 {
		in.Events = attendance.Field[[]string]{Set: true, Value: events}
	}
	var w attendance.Webhook
	err := h.store.InTx(context.Background(), func(tx *store.Tx) (err error) {
		w, err = tx.CreateWebhook(context.Background(), accountID, in, "whsec_your_signing_secret")
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// emit records n attendance.punch events of the account, as ingest does.
func (h *harness) emit(n int) []string {
	h.t.Helper()
	return h.emitFor(h.account.ID, n)
}

func (h *harness) emitFor(accountID string, n int) []string {
	h.t.Helper()
	var ids []string
	var evs []attendance.Event
	for range n {
		evID := id.New(id.Event)
		payload := fmt.Sprintf(`{"event_id":%q,"event_type":"attendance.punch","timestamp":%q,"metadata":{"deduplicated":false,"delivery_attempt":0}}`,
			evID, h.clock.Now().Format(time.RFC3339Nano))
		evs = append(evs, attendance.Event{ID: evID, AccountID: accountID, Type: attendance.EventAttendancePunch, CreatedAt: h.clock.Now(), Payload: []byte(payload)})
		ids = append(ids, evID)
	}
	err := h.store.InTx(context.Background(), func(tx *store.Tx) error { return tx.InsertEvents(context.Background(), evs) })
	if err != nil {
		h.t.Fatal(err)
	}
	return ids
}

// advance moves the fake clock and nudges the dispatcher.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.disp.Kick()
}

func (h *harness) deliveries(webhookID string) []attendance.Delivery {
	h.t.Helper()
	page, err := h.store.ListDeliveries(context.Background(), h.account.ID, store.DeliveryList{WebhookID: webhookID}, store.ListParams{Sort: store.DeliverySorts[0], Limit: 500})
	if err != nil {
		h.t.Fatal(err)
	}
	return page.Items
}

// waitDeliveries waits until the webhook's deliveries (committed after
// their sends) satisfy cond, and returns them.
func (h *harness) waitDeliveries(webhookID, what string, cond func([]attendance.Delivery) bool) []attendance.Delivery {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds := h.deliveries(webhookID)
		if cond(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: %+v", what, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSettled waits until the webhook's n deliveries are all delivered.
func (h *harness) waitSettled(webhookID string, n int) []attendance.Delivery {
	h.t.Helper()
	return h.waitDeliveries(webhookID, fmt.Sprintf("%d delivered", n), func(ds []attendance.Delivery) bool {
		done := len(ds) == n
		for _, d := range ds {
			done = done && d.Status == attendance.DeliveryDelivered
		}
		return done
	})
}

func (h *harness) readWebhook(webhookID string) attendance.Webhook {
	h.t.Helper()
	w, err := h.store.Webhook(context.Background(), h.account.ID, webhookID)
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// waitMail waits for the n-th e-mail to arrive at the sink.
func (h *harness) waitMail(n int) []mail.Received {
	h.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := h.sink.Messages(); len(got) >= n {
			return got
		}
		select {
		case <-h.sink.Arrived():
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("timed out waiting for e-mail %d", n)
		}
	}
}

func eachBackend(t *testing.T, f func(t *testing.T, b storetest.Backend)) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOrderedSignedDelivery: events reach the endpoint once each, in the
// order they were recorded, with both signatures the docs describe.
func TestOrderedSignedDelivery(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		w := h.webhook(rc.URL + "/webhooks/attendance")
		var want []string
		for range 10 {
			want = append(want, h.emit(25)...)
		}
		got := rc.waitN(t, len(want))
		if ids := delivered(got); !equal(ids, want) {
			t.Fatalf("events arrived out of order or not once each:\n got %v\nwant %v", ids, want)
		}
		for _, r := range got {
			if r.Attempt != 1 {
				t.Fatalf("delivery_attempt = %d, want 1", r.Attempt)
			}
			// The seed's check, byte for byte.
			m := hmac.New(sha256.New, []byte("whsec_your_signing_secret"))
			m.Write(r.Body)
			if sig := r.Header.Get("X-PunchConnect-Signature"); sig != "sha256="+hex.EncodeToString(m.Sum(nil)) {
				t.Fatalf("X-PunchConnect-Signature %q does not verify", sig)
			}
			// Standard Webhooks: the secret is not base64 after whsec_, so the key is its bytes.
			ts := r.Header.Get("webhook-timestamp")
			if r.Header.Get("webhook-id") != r.EventID || ts == "" {
				t.Fatalf("webhook-id %q, timestamp %q", r.Header.Get("webhook-id"), ts)
			}
			sm := hmac.New(sha256.New, []byte("whsec_your_signing_secret"))
			sm.Write([]byte(r.EventID + "." + ts + "."))
			sm.Write(r.Body)
			if sig := r.Header.Get("webhook-signature"); sig != "v1,"+base64.StdEncoding.EncodeToString(sm.Sum(nil)) {
				t.Fatalf("webhook-signature %q does not verify", sig)
			}
			if ua := r.Header.Get("User-Agent"); ua != "PunchConnect-Webhooks/test" {
				t.Fatalf("User-Agent %q", ua)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		}
		ds := h.waitSettled(w.ID, len(want))
		for _, d := range ds {
			if d.Status != attendance.DeliveryDelivered || d.Attempts != 1 || len(d.AttemptLog) != 1 || d.AttemptLog[0].StatusCode != 200 {
				t.Fatalf("delivery %+v", d)
			}
			if d.AttemptLog[0].ResponseExcerpt != `{"status":200}` {
				t.Fatalf("response excerpt %q", d.AttemptLog[0].ResponseExcerpt)
			}
		}
	})
}

// TestOutageQueuesThenDrainsInOrder: while the endpoint is down, new events
// queue behind the oldest instead of each retrying; the first probe that
// succeeds drains the backlog in order at once.
func TestOutageQueuesThenDrainsInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		down := func(received) int { return http.StatusInternalServerError }
		rc.setAnswer(down)
		w := h.webhook(rc.URL)
		first := h.emit(1)
		rc.waitN(t, 1)
		rc.quiet(t, 1)
		if got := h.readWebhook(w.ID); got.State != attendance.WebhookFailing {
			t.Fatalf("state %q after a failure, want failing", got.State)
		}
		// Later events: each is due when recorded, so each probes (with the
		// oldest event), but none is sent on its own while the head fails.
		h.advance(10 * time.Second)
		rest := h.emit(40)
		// A probe with the head, which fails a second time, and so one
		// canary (the next event) to tell an outage from a rejected event.
		got := rc.waitN(t, 3)
		if got[1].EventID != first[0] || got[2].EventID != rest[0] {
			t.Fatalf("probe sent %s then %s; want the head %s then the canary %s", got[1].EventID, got[2].EventID, first[0], rest[0])
		}
		rc.quiet(t, 3)
		// The endpoint comes back; the next slot (head's 1m) probes, and
		// everything drains in order.
		rc.setAnswer(nil)
		h.advance(time.Minute)
		want := append(first, rest...)
		got = rc.waitFor(t, "the backlog", func(got []received) bool { return len(delivered(got)) >= len(want) })
		if ids := delivered(got); !equal(ids, want) {
			t.Fatalf("backlog drained out of order:\n got %v\nwant %v", ids, want)
		}
		h.waitSettled(w.ID, len(want))
		if st := h.readWebhook(w.ID); st.State != attendance.WebhookHealthy || !st.FailingSince.IsZero() {
			t.Fatalf("after recovery: state %q failing_since %v", st.State, st.FailingSince)
		}
	})
}

// TestBacklogFlowsBatchAfterBatch: a backlog many batches long (batches of
// 7 here) drains in order, each event sent once: the reads of each next
// batch are made while the one before it is sent, and must pick up exactly
// where it ends, also when a batch is cut short by a rejected event.
func TestBacklogFlowsBatchAfterBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarnessBatch(t, b, 7)
		rc := newReceiver(t)
		var poison string
		rc.setAnswer(rejecting(&poison, http.StatusInternalServerError))
		w := h.webhook(rc.URL)
		rc.mu.Lock() // the receiver reads poison under its lock
		want := h.emit(100)
		poison = want[45]
		rc.mu.Unlock()
		rc.waitN(t, 1)
		rc.quiet(t, 1)
		rc.setAnswer(rejecting(&poison, http.StatusOK))
		h.advance(time.Minute)
		others := slices.Concat(want[:45], want[46:])
		got := rc.waitFor(t, "the backlog", func(got []received) bool { return len(delivered(got)) >= len(others) })
		if ids := delivered(got); !equal(ids, others) {
			t.Fatalf("backlog drained out of order:\n got %v\nwant %v", ids, others)
		}
		ok := 0
		for _, r := range got {
			if r.Status == http.StatusOK {
				ok++
			}
		}
		if ok != len(others) {
			t.Fatalf("%d events taken, %d sent with 200: some were sent twice", len(others), ok)
		}
		h.waitDeliveries(w.ID, "all but the rejected event delivered, it isolated", func(ds []attendance.Delivery) bool {
			done := len(ds) == len(want)
			for _, d := range ds {
				if d.EventID == poison {
					done = done && d.Isolated && d.Status == attendance.DeliveryPending
				} else {
					done = done && d.Status == attendance.DeliveryDelivered
				}
			}
			return done
		})
	})
}

// TestScheduleExhaustionMailsOncePerIncident: a dead endpoint gets the first
// attempt and one per offset of the schedule — 7 with the default — then the
// delivery fails and the account gets one e-mail for the incident.
func TestScheduleExhaustionMailsOncePerIncident(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		rc.setAnswer(func(received) int { return http.StatusInternalServerError })
		w := h.webhook(rc.URL)
		ev := h.emit(1)
		rc.waitN(t, 1)
		at := time.Duration(0)
		for i, off := range h.slots[1:] {
			// Just before the slot: nothing.
			h.advance(off - at - time.Second)
			rc.quiet(t, i+1)
			h.advance(time.Second)
			at = off
			got := rc.waitN(t, i+2)
			if r := got[i+1]; r.EventID != ev[0] || r.Attempt != i+2 {
				t.Fatalf("attempt %d: event %s delivery_attempt %d", i+2, r.EventID, r.Attempt)
			}
		}
		ds := h.waitDeliveries(w.ID, "the delivery to fail", func(ds []attendance.Delivery) bool { return ds[0].Status != attendance.DeliveryPending })
		if len(ds) != 1 || ds[0].Status != attendance.DeliveryFailed || ds[0].Attempts != 7 || len(ds[0].AttemptLog) != 7 {
			t.Fatalf("after the final attempt: %+v", ds)
		}
		for i, a := range ds[0].AttemptLog {
			wantNext := time.Time{}
			if i < 6 {
				wantNext = storetest.Epoch.Add(h.slots[i+1])
			}
			if a.StatusCode != 500 || !a.NextAttemptAt.Equal(wantNext) || !strings.Contains(a.Error, "500") {
				t.Fatalf("attempt %d: %+v, want next attempt %v", i+1, a, wantNext)
			}
		}
		msgs := h.waitMail(1)
		m := msgs[0]
		if m.To[0] != "acme@example.com" || !strings.Contains(m.Subject, rc.URL) || !strings.Contains(m.Body, ev[0]) ||
			!strings.Contains(m.Body, "500 Internal Server Error") || !strings.Contains(m.Body, w.ID) {
			t.Fatalf("incident e-mail: %+v", m)
		}
		// Another event of the same incident fails later: no second e-mail.
		more := h.emit(1)
		rc.waitN(t, 8)
		h.advance(h.slots[len(h.slots)-1])
		rc.waitN(t, 9)
		h.waitDeliveries(w.ID, "the second event to fail", func([]attendance.Delivery) bool {
			return h.deliveryOf(w.ID, more[0]).Status == attendance.DeliveryFailed
		})
		time.Sleep(100 * time.Millisecond)
		if n := len(h.sink.Messages()); n != 1 {
			t.Fatalf("%d e-mails for one incident, want 1", n)
		}
		// The endpoint recovers, a new incident begins: a new e-mail.
		rc.setAnswer(nil)
		fresh := h.emit(1)
		rc.waitFor(t, "recovery", func(got []received) bool { return len(delivered(got)) == 1 })
		rc.setAnswer(func(received) int { return http.StatusBadGateway })
		late := h.emit(1)
		rc.waitN(t, 11)
		h.advance(h.slots[len(h.slots)-1])
		msgs = h.waitMail(2)
		if !strings.Contains(msgs[1].Body, late[0]) || strings.Contains(msgs[1].Body, fresh[0]) {
			t.Fatalf("second incident e-mail: %s", msgs[1].Body)
		}
	})
}

func (h *harness) deliveryOf(webhookID, eventID string) attendance.Delivery {
	h.t.Helper()
	for _, d := range h.deliveries(webhookID) {
		if d.EventID == eventID {
			return d
		}
	}
	h.t.Fatalf("no delivery of %s", eventID)
	return attendance.Delivery{}
}

// TestPoisonEventIsIsolated: an endpoint that answers others but rejects one
// event does not hold the rest back; the rejected one keeps its own schedule.
func TestPoisonEventIsIsolated(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		var poison string
		rc.setAnswer(rejecting(&poison, http.StatusOK))
		w := h.webhook(rc.URL)
		// The receiver reads poison under its lock: set it with the events
		// recorded (one transaction) before any is answered.
		rc.mu.Lock()
		ids := h.emit(5)
		poison = ids[1]
		rc.mu.Unlock()
		want := []string{ids[0], ids[2], ids[3], ids[4]}
		got := rc.waitFor(t, "the others", func(got []received) bool { return len(delivered(got)) == 4 })
		if d := delivered(got); !equal(d, want) {
			t.Fatalf("delivered %v, want %v", d, want)
		}
		h.waitDeliveries(w.ID, "the poison isolated", func([]attendance.Delivery) bool { return h.deliveryOf(w.ID, poison).Isolated })
		d := h.deliveryOf(w.ID, poison)
		if d.Status != attendance.DeliveryPending || !d.NextAttemptAt.Equal(storetest.Epoch.Add(time.Minute)) {
			t.Fatalf("isolated delivery: %+v", d)
		}
		if st := h.readWebhook(w.ID); st.State != attendance.WebhookHealthy {
			t.Fatalf("endpoint state %q, want healthy", st.State)
		}
		// New events flow while the poison waits for its slot.
		next := h.emit(1)
		rc.waitFor(t, "a new event", func(got []received) bool { return len(delivered(got)) == 5 })
		n := len(rc.requests())
		// Its slot comes: it alone is retried.
		h.advance(time.Minute)
		got = rc.waitN(t, n+1)
		if got[n].EventID != poison || got[n].Attempt != 2 {
			t.Fatalf("retry sent %s attempt %d, want the poison's attempt 2", got[n].EventID, got[n].Attempt)
		}
		rc.quiet(t, n+1)
		_ = next
		// Accepted at last: delivered, out of order but not lost.
		rc.setAnswer(nil)
		h.advance(4 * time.Minute)
		rc.waitFor(t, "the poison", func(got []received) bool { return len(delivered(got)) == 6 })
	})
}

// TestGoneDisablesAndMails: 410 disables the endpoint and says so by e-mail.
func TestGoneDisablesAndMails(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		rc.setAnswer(func(received) int { return http.StatusGone })
		w := h.webhook(rc.URL)
		h.emit(3)
		rc.waitN(t, 1)
		msgs := h.waitMail(1)
		if !strings.Contains(msgs[0].Subject, "disabled") || !strings.Contains(msgs[0].Body, "410 Gone") {
			t.Fatalf("e-mail: %+v", msgs[0])
		}
		st := h.readWebhook(w.ID)
		if st.Enabled || !strings.Contains(st.DisabledReason, "410") {
			t.Fatalf("webhook after 410: enabled %v reason %q", st.Enabled, st.DisabledReason)
		}
		h.advance(time.Hour)
		rc.quiet(t, 1)
		// Enabled again, its kept deliveries go out in order.
		rc.setAnswer(nil)
		err := h.store.InTx(context.Background(), func(tx *store.Tx) error {
			_, err := tx.UpdateWebhook(context.Background(), h.account.ID, w.ID, attendance.WebhookInput{Enabled: attendance.Field[bool]{Set: true, Value: true}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		h.disp.Kick()
		rc.waitFor(t, "the kept deliveries", func(got []received) bool { return len(delivered(got)) == 3 })
	})
}

// TestRetryAfterHoldsTheEndpoint: a 503 with Retry-After holds probes until
// then, within the schedule.
func TestRetryAfterHoldsTheEndpoint(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		rc := newReceiver(t)
		rc.setAnswer(func(received) int { return http.StatusServiceUnavailable }) // Retry-After: 600
		w := h.webhook(rc.URL)
		h.emit(1)
		rc.waitN(t, 1)
		h.advance(time.Minute) // the 1m slot: held by Retry-After
		rc.quiet(t, 1)
		h.advance(5 * time.Minute)
		rc.quiet(t, 1)
		rc.setAnswer(nil)
		h.advance(4 * time.Minute) // 10 minutes after the 503
		rc.waitFor(t, "the held event", func(got []received) bool { return len(delivered(got)) == 1 })
		h.waitSettled(w.ID, 1)
	})
}

// TestRetryDuringFailingProbe: the endpoint's owner asks for a retry while
// a probe, sent before the endpoint came back, is on its way and then fails:
// the retry still probes at once, instead of the failed probe sending the
// queue to its next slot (5 minutes away here, hours later in a schedule).
func TestRetryDuringFailingProbe(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		var calls atomic.Int32
		inFlight, release, delivered := make(chan struct{}), make(chan struct{}), make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			switch calls.Add(1) {
			case 1: // the first attempt: down
				w.WriteHeader(http.StatusInternalServerError)
			case 2: // the 1m slot's probe: down when it arrived
				close(inFlight)
				<-release
				w.WriteHeader(http.StatusInternalServerError)
			case 3:
				w.WriteHeader(http.StatusOK)
				close(delivered)
			default:
				w.WriteHeader(http.StatusOK)
			}
		}))
		defer srv.Close()
		releaseProbe := sync.OnceFunc(func() { close(release) })
		defer releaseProbe()
		w := h.webhook(srv.URL)
		h.emit(1)
		h.waitDeliveries(w.ID, "the first attempt's failure", func(ds []attendance.Delivery) bool {
			return len(ds) == 1 && ds[0].Attempts == 1 && ds[0].Slot == 1
		})
		h.advance(time.Minute)
		select {
		case <-inFlight:
		case <-time.After(15 * time.Second):
			t.Fatal("the 1m slot did not probe")
		}
		h.clock.Advance(time.Second)
		err := h.store.InTx(context.Background(), func(tx *store.Tx) error {
			_, err := tx.RequeueFailed(context.Background(), h.account.ID, w.ID, time.Time{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		h.disp.Kick()
		releaseProbe()
		select {
		case <-delivered:
		case <-time.After(15 * time.Second):
			t.Fatalf("the retry did not probe again (%d requests): the queue waits for its next slot", calls.Load())
		}
		h.waitSettled(w.ID, 1)
	})
}

// TestSlowEndpointDoesNotDelayOthers: an endpoint that hangs until the
// timeout holds only its own queue.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(release)
		fast := newReceiver(t)
		other, _ := storetest.NewAccount(t, h.store, "Other")
		h.webhook(slow.URL)
		h.webhookFor(other.ID, fast.URL)
		h.emit(20)
		time.Sleep(50 * time.Millisecond) // the slow endpoint's worker is now stuck
		start := time.Now()
		want := h.emitFor(other.ID, 20)
		got := fast.waitFor(t, "the other account's events", func(got []received) bool { return len(delivered(got)) == 20 })
		if !equal(delivered(got), want) {
			t.Fatal("out of order")
		}
		if el := time.Since(start); el > 900*time.Millisecond {
			t.Errorf("the fast endpoint took %v, as long as the slow one's timeout", el)
		}
	})
}

// TestPrivateAddressRefusedAtConnect: without --allow-private-webhook-urls a
// URL that reaches a loopback address fails at connect time, whatever it
// resolved to when registered.
func TestPrivateAddressRefusedAtConnect(t *testing.T) {
	rc := newReceiver(t)
	s := delivery.NewSender(time.Second, false, "test", time.Now)
	defer s.Close()
	w := &attendance.Webhook{URL: rc.URL, Secret: "whsec_x"}
	res := s.Send(context.Background(), w, "evt_1", []byte(`{"metadata":{"deduplicated":false,"delivery_attempt":0}}`), 1)
	if res.OK() || !strings.Contains(res.Err, "--allow-private-webhook-urls") || len(rc.requests()) != 0 {
		t.Fatalf("result %+v; %d requests reached the receiver", res, len(rc.requests()))
	}
}

// TestNodesShareEndpoints: several nodes on one PostgreSQL split the
// endpoints by lease, and each endpoint still gets its events in order.
func TestNodesShareEndpoints(t *testing.T) {
	pg, ok := storetest.PostgresBackend(t)
	if !ok {
		t.Skip(storetest.PostgresURLEnv + " is not set")
	}
	h := newHarness(t, pg)
	h.start(t, "node-2")
	h.start(t, "node-3")
	var rcs []*receiver
	for range 6 {
		rc := newReceiver(t)
		rcs = append(rcs, rc)
		h.webhook(rc.URL)
	}
	var want []string
	for range 20 {
		want = append(want, h.emit(10)...)
	}
	for i, rc := range rcs {
		got := rc.waitFor(t, fmt.Sprintf("receiver %d", i), func(got []received) bool { return len(delivered(got)) == len(want) })
		if !equal(delivered(got), want) {
			t.Fatalf("receiver %d got events out of order", i)
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

// TestBinaryAnswerIsLogged: whatever bytes an endpoint answers with, the
// attempt is logged (PostgreSQL text cannot hold NUL) and delivery goes on.
func TestBinaryAnswerIsLogged(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("bad\x00\xff\x1bbody"))
		}))
		defer srv.Close()
		w := h.webhook(srv.URL)
		h.emit(1)
		ds := h.waitDeliveries(w.ID, "the attempt logged", func(ds []attendance.Delivery) bool { return len(ds) == 1 && len(ds[0].AttemptLog) == 1 })
		if a := ds[0].AttemptLog[0]; a.StatusCode != 400 || a.ResponseExcerpt != "bad\uFFFD\uFFFD\uFFFDbody" {
			t.Fatalf("attempt %+v", a)
		}
	})
}

// TestStopMidSendIsNotAnAttempt: a send cut short because this node stops
// is not logged as a failed attempt and does not fail the endpoint; the next
// dispatcher sends it again.
func TestStopMidSendIsNotAnAttempt(t *testing.T) {
	b := storetest.SQLiteBackend()
	clock := storetest.NewClock(storetest.Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	acct, _ := storetest.NewAccount(t, s, "Acme")
	arrived := make(chan struct{}, 10)
	hang := true
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // so the server notices the client going away
		arrived <- struct{}{}
		mu.Lock()
		wait := hang
		mu.Unlock()
		if wait {
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	w := storetest.NewWebhook(t, s, acct.ID, srv.URL)
	storetest.RecordEvents(t, s, acct.ID, attendance.EventAttendancePunch, 1)
	slots, _ := delivery.ParseSchedule(delivery.DefaultSchedule)
	run := func() (context.CancelFunc, chan struct{}) {
		sender := delivery.NewSender(time.Minute, true, "test", clock.Now)
		d, err := delivery.NewDispatcher(delivery.Config{Store: s, Sender: sender, Logger: quiet, Now: clock.Now, Slots: slots, Poll: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		return cancel, done
	}
	cancel, done := run()
	<-arrived
	cancel()
	<-done
	page, err := s.ListDeliveries(context.Background(), acct.ID, store.DeliveryList{WebhookID: w.ID}, store.ListParams{Sort: store.DeliverySorts[0], Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if d := page.Items[0]; d.Status != attendance.DeliveryPending || d.Attempts != 0 || len(d.AttemptLog) != 0 {
		t.Fatalf("after a stop mid-send: %+v", d)
	}
	if got, _ := s.Webhook(context.Background(), acct.ID, w.ID); got.State != attendance.WebhookHealthy {
		t.Fatalf("the stop failed the endpoint: %q", got.State)
	}
	mu.Lock()
	hang = false
	mu.Unlock()
	cancel, done = run()
	defer func() { cancel(); <-done }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("not sent again after the restart")
	}
}

// TestHostileReceivers: an endpoint that answers 200 and then trickles its
// body is cut off at the timeout (its status took the event), and one that
// answers with 10 MB is read for its first 1 KiB only: time and memory stay
// bounded.
func TestHostileReceivers(t *testing.T) {
	h := newHarness(t, storetest.SQLiteBackend())
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(200)
		for range 100 {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	defer trickle.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		chunk := bytes.Repeat([]byte("y"), 64<<10)
		for range 160 { // 10 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	slow := h.webhook(trickle.URL)
	big := h.webhook(huge.URL)
	start := time.Now()
	h.emit(1)
	ds := h.waitDeliveries(slow.ID, "the trickling endpoint cut off", func(ds []attendance.Delivery) bool { return len(ds) == 1 && len(ds[0].AttemptLog) == 1 })
	if a := ds[0].AttemptLog[0]; ds[0].Status != attendance.DeliveryDelivered || a.Duration > 1500*time.Millisecond || len(a.ResponseExcerpt) >= 100 || time.Since(start) > 5*time.Second {
		t.Fatalf("trickling endpoint: %+v (%s) after %v", a, ds[0].Status, time.Since(start))
	}
	ds = h.waitDeliveries(big.ID, "the huge answer read", func(ds []attendance.Delivery) bool { return len(ds) == 1 && len(ds[0].AttemptLog) == 1 })
	if a := ds[0].AttemptLog[0]; ds[0].Status != attendance.DeliveryDelivered || len(a.ResponseExcerpt) != 1024 {
		t.Fatalf("huge answer: status %s, excerpt of %d bytes", ds[0].Status, len(a.ResponseExcerpt))
	}
}
