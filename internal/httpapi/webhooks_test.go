package httpapi

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/delivery"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func allowPrivate() envOption { return func(c *Config) { c.AllowPrivateWebhookURLs = true } }

// seedWebhook is the seed's cURL registration body, unchanged.
var seedWebhook = map[string]any{
	"url":    "https://your-app.com/webhooks/attendance",
	"events": []string{"attendance.punch", "device.status"},
	"secret": "whsec_your_signing_secret",
}

func TestWebhookCRUD(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		// The seed's request works as is. (Its host need not resolve in a
		// test sandbox: address checks are TestWebhookURLChecks' business.)
		e := newEnv(t, b, allowPrivate())
		w := e.api.Do("POST", "/v1/webhooks", seedWebhook).Expect(t, 201).Data(t)
		if w["secret"] != "whsec_your_signing_secret" || w["url"] != seedWebhook["url"] || fmt.Sprint(w["events"]) != "[attendance.punch device.status]" {
			t.Fatalf("created %v", w)
		}
		whID := w["id"].(string)
		if d := w["delivery"].(map[string]any); d["state"] != "healthy" || d["pending_deliveries"] != 0.0 {
			t.Fatalf("delivery %v", d)
		}
		// The secret is shown only on create and on an explicit reveal.
		if got := e.api.Do("GET", "/v1/webhooks/"+whID, nil).Expect(t, 200).Data(t); got["secret"] != nil {
			t.Fatalf("GET shows the secret: %v", got["secret"])
		}
		if got := e.api.Do("GET", "/v1/webhooks/"+whID+"/secret", nil).Expect(t, 200).Data(t); got["secret"] != "whsec_your_signing_secret" {
			t.Fatalf("reveal: %v", got["secret"])
		}
		var list struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("GET", "/v1/webhooks", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["secret"] != nil {
			t.Fatalf("list %v", list.Data)
		}

		// Generated secrets: whsec_ and base64 of 32 bytes.
		g := e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/hook"}).Expect(t, 201).Data(t)
		sec := g["secret"].(string)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if !strings.HasPrefix(sec, "whsec_") || err != nil || len(raw) != 32 || fmt.Sprint(g["events"]) != "[*]" {
			t.Fatalf("generated secret %q (%v), events %v", sec, err, g["events"])
		}

		// Update.
		u := e.api.Do("PATCH", "/v1/webhooks/"+whID, map[string]any{"events": []string{"*"}, "description": "payroll", "enabled": false}).Expect(t, 200).Data(t)
		if u["enabled"] != false || u["description"] != "payroll" || u["disabled_reason"] != "disabled through the API" || u["delivery"].(map[string]any)["state"] != "disabled" {
			t.Fatalf("updated %v", u)
		}
		e.api.Do("PATCH", "/v1/webhooks/"+whID, map[string]any{"secret": "whsec_other_secret"}, apitest.Invalid()).ExpectError(t, 400, "read_only_parameter")
		u = e.api.Do("PATCH", "/v1/webhooks/"+whID, map[string]any{"enabled": true}).Expect(t, 200).Data(t)
		if u["enabled"] != true || u["disabled_reason"] != nil {
			t.Fatalf("re-enabled %v", u)
		}

		// Rotation: a new secret, the old one signing for the grace period.
		r := e.api.Do("POST", "/v1/webhooks/"+whID+"/rotate_secret", map[string]any{"grace_period_hours": 2}).Expect(t, 200).Data(t)
		if r["secret"] == "whsec_your_signing_secret" || !strings.HasPrefix(r["secret"].(string), "whsec_") ||
			r["previous_secret_expires_at"] != storetest.Epoch.Add(2*time.Hour).Format(time.RFC3339) {
			t.Fatalf("rotated %v", r)
		}
		e.api.Do("POST", "/v1/webhooks/"+whID+"/rotate_secret", map[string]any{"grace_period_hours": 1000}, apitest.Invalid()).ExpectError(t, 400, "invalid_parameter")

		// Another account sees none of it.
		_, other := e.otherAccount("Other")
		other.Do("GET", "/v1/webhooks/"+whID, nil).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/webhooks/"+whID+"/secret", nil).ExpectError(t, 404, "resource_not_found")
		other.Do("DELETE", "/v1/webhooks/"+whID, nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/webhooks/"+whID+"/rotate_secret", nil).ExpectError(t, 404, "resource_not_found")

		e.api.Do("DELETE", "/v1/webhooks/"+whID, nil).Expect(t, 200)
		e.api.Do("GET", "/v1/webhooks/"+whID, nil).ExpectError(t, 404, "resource_not_found")
	})
}

func TestWebhookURLChecks(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	for _, c := range []struct {
		url, code string
	}{
		{"http://127.0.0.1:3000/webhooks", "webhook_url_not_allowed"},
		{"http://localhost/webhooks", "webhook_url_not_allowed"},
		{"http://169.254.169.254/latest/meta-data", "webhook_url_not_allowed"},
		{"http://[::1]/x", "webhook_url_not_allowed"},
		{"http://10.1.2.3/x", "webhook_url_not_allowed"},
		{"ftp://example.com/x", "invalid_webhook_url"},
		{"/webhooks", "invalid_webhook_url"},
		{"https://user:pass@example.com/x", "invalid_webhook_url"},
		{"https://no-such-host.invalid/x", "invalid_webhook_url"},
	} {
		er := e.api.Do("POST", "/v1/webhooks", map[string]any{"url": c.url}).ExpectError(t, 400, c.code)
		if c.code == "webhook_url_not_allowed" && !strings.Contains(er.Message, "--allow-private-webhook-urls") {
			t.Errorf("%s: the error must name the flag: %s", c.url, er.Message)
		}
		if er.Param == nil || *er.Param != "url" {
			t.Errorf("%s: param %v", c.url, er.Param)
		}
	}
	e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com", "events": []string{"attendance.punched"}}).ExpectError(t, 400, "unknown_event_type")
	e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com", "secret": "short"}, apitest.Invalid()).ExpectError(t, 400, "invalid_parameter")
	e.api.Do("POST", "/v1/webhooks", map[string]any{"events": []string{"*"}}, apitest.Invalid()).ExpectError(t, 400, "missing_parameter")

	p := newEnv(t, storetest.SQLiteBackend(), allowPrivate())
	p.api.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:3000/webhooks"}).Expect(t, 201)
	for i := 1; i < attendance.MaxWebhooksPerAccount; i++ {
		p.api.Do("POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("http://127.0.0.1:3000/%d", i)}).Expect(t, 201)
	}
	p.api.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:3000/x"}).ExpectError(t, 409, "too_many_webhooks")
}

// TestWebhookTestSend: the test event arrives signed both ways, and its
// outcome is reported.
func TestWebhookTestSend(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend(), allowPrivate())
	var mu sync.Mutex
	var got *http.Request
	var body []byte
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got, body = r, nil
		body, _ = io.ReadAll(r.Body)
		fmt.Fprint(w, "thanks")
	}))
	defer rc.Close()
	w := e.api.Do("POST", "/v1/webhooks", map[string]any{"url": rc.URL, "secret": "whsec_your_signing_secret"}).Expect(t, 201).Data(t)
	res := e.api.Do("POST", "/v1/webhooks/"+w["id"].(string)+"/test", nil).Expect(t, 200).Data(t)
	if res["delivered"] != true || res["status_code"] != 200.0 || res["response_excerpt"] != "thanks" {
		t.Fatalf("test result %v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	m := hmac.New(sha256.New, []byte("whsec_your_signing_secret"))
	m.Write(body)
	if got.Header.Get("X-PunchConnect-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) || got.Header.Get("webhook-id") != res["event_id"] {
		t.Fatalf("headers %v", got.Header)
	}
	if !strings.Contains(string(body), `"event_type":"webhook.test"`) || !strings.Contains(string(body), `"delivery_attempt":1`) {
		t.Fatalf("body %s", body)
	}
	rc.Close()
	res = e.api.Do("POST", "/v1/webhooks/"+w["id"].(string)+"/test", nil).Expect(t, 200).Data(t)
	if res["delivered"] != false || res["status_code"] != nil || !strings.Contains(res["error"].(string), "could not reach") {
		t.Fatalf("test of a closed endpoint: %v", res)
	}
}

// recordEvents records events as ingest does, at the clock's time.
func (e *testEnv) recordEvents(evs ...attendance.Event) {
	e.t.Helper()
	err := e.store.InTx(context.Background(), func(tx *store.Tx) error { return tx.InsertEvents(context.Background(), evs) })
	if err != nil {
		e.t.Fatal(err)
	}
}

func statusEvent(accountID, deviceID string, now time.Time) attendance.Event {
	return event.DeviceStatus(attendance.Device{ID: deviceID, AccountID: accountID, SerialNumber: "SN" + deviceID[len(deviceID)-4:], Status: attendance.DeviceStatusOnline},
		attendance.DeviceStatusPending, now)
}

func TestEventsAndDeliveries(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, allowPrivate())
		w := e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"device.status"}}).Expect(t, 201).Data(t)
		whID := w["id"].(string)
		e1 := statusEvent(e.acct.ID, "dev_01jq3v8c1kfx9b7n2m4p6r8t0a", e.clock.Now())
		e.recordEvents(e1)
		e.clock.Advance(time.Hour)
		e2 := statusEvent(e.acct.ID, "dev_01jq3v8c1kfx9b7n2m4p6r8t0b", e.clock.Now())
		e.recordEvents(e2)

		var list struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("GET", "/v1/events", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 2 || list.Data[0]["id"] != e1.ID || list.Data[1]["id"] != e2.ID {
			t.Fatalf("events %v", list.Data)
		}
		if d := list.Data[0]["data"].(map[string]any); d["event_id"] != e1.ID || d["event_type"] != "device.status" {
			t.Fatalf("event data %v", d)
		}
		e.api.Do("GET", "/v1/events?start="+storetest.Epoch.Add(time.Minute).Format(time.RFC3339), nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != e2.ID {
			t.Fatalf("start filter: %v", list.Data)
		}
		e.api.Do("GET", "/v1/events?device_id="+e1.DeviceID+"&type=device.status", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != e1.ID {
			t.Fatalf("device filter: %v", list.Data)
		}
		e.api.Do("GET", "/v1/events?type=attendance.punch", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Fatalf("type filter: %v", list.Data)
		}
		e.api.Do("GET", "/v1/events?type=nope", nil, apitest.Invalid()).ExpectError(t, 400, "unknown_event_type")
		if got := e.api.Do("GET", "/v1/events/"+e2.ID, nil).Expect(t, 200).Data(t); got["type"] != "device.status" {
			t.Fatalf("event %v", got)
		}

		// One pending delivery per event for the subscribed webhook.
		e.api.Do("GET", "/v1/events/"+e1.ID+"/deliveries", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["status"] != "pending" || list.Data[0]["webhook_id"] != whID || list.Data[0]["source"] != "event" {
			t.Fatalf("deliveries %v", list.Data)
		}
		e.api.Do("GET", "/v1/webhooks/"+whID+"/deliveries?status=pending", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 2 {
			t.Fatalf("webhook deliveries %v", list.Data)
		}
		// Redeliver: a second delivery of the same event.
		var redone struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("POST", "/v1/events/"+e1.ID+"/redeliver", nil).Expect(t, 202).JSON(t, &redone)
		if len(redone.Data) != 1 || redone.Data[0]["event_id"] != e1.ID || redone.Data[0]["source"] != "redeliver" {
			t.Fatalf("redeliver %v", redone.Data)
		}

		// Failed deliveries (their schedule ran out) are re-queued by retry.
		e.clock.Advance(73 * time.Hour)
		slots, _ := delivery.ParseSchedule(delivery.DefaultSchedule)
		err := e.store.InTx(context.Background(), func(tx *store.Tx) error {
			_, err := tx.ConsumeDueSlots(context.Background(), whID, e.clock.Now(), slots, "test outage")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.api.Do("GET", "/v1/webhooks/"+whID+"/deliveries?status=failed", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 3 || list.Data[0]["last_error"] != "test outage" {
			t.Fatalf("failed %v", list.Data)
		}
		rt := e.api.Do("POST", "/v1/webhooks/"+whID+"/retry", nil).Expect(t, 200).Data(t)
		if rt["requeued"] != 3.0 {
			t.Fatalf("retry %v", rt)
		}
		rt = e.api.Do("POST", "/v1/webhooks/"+whID+"/retry", map[string]any{"since": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}).Expect(t, 200).Data(t)
		if rt["requeued"] != 0.0 {
			t.Fatalf("retry since the future %v", rt)
		}
		wv := e.api.Do("GET", "/v1/webhooks/"+whID, nil).Expect(t, 200).Data(t)
		if d := wv["delivery"].(map[string]any); d["pending_deliveries"] != 3.0 || d["next_attempt_at"] != e.clock.Now().Format(time.RFC3339) {
			t.Fatalf("after retry: %v", d)
		}

		// Replay: a job that queues the range again.
		rp := e.api.Do("POST", "/v1/webhooks/"+whID+"/replay", map[string]any{
			"start": storetest.Epoch.Format(time.RFC3339), "end": storetest.Epoch.Add(30 * time.Minute).Format(time.RFC3339),
		}).Expect(t, 202).Data(t)
		if rp["status"] != "running" || rp["progress"].(map[string]any)["total"] != 1.0 {
			t.Fatalf("replay %v", rp)
		}
		for {
			_, did, err := e.store.AdvanceReplay(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !did {
				break
			}
		}
		rp = e.api.Do("GET", "/v1/webhooks/"+whID+"/replays/"+rp["id"].(string), nil).Expect(t, 200).Data(t)
		if rp["status"] != "completed" || rp["progress"].(map[string]any)["enqueued"] != 1.0 || rp["finished_at"] == nil {
			t.Fatalf("replay after running %v", rp)
		}
		e.api.Do("GET", "/v1/events/"+e1.ID+"/deliveries?sort=-created_at", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 3 || list.Data[0]["source"] != "replay" {
			t.Fatalf("deliveries after replay %v", list.Data)
		}
		e.api.Do("POST", "/v1/webhooks/"+whID+"/replay", map[string]any{"start": "2026-03-28T00:00:00Z"}, apitest.Invalid()).ExpectError(t, 400, "missing_parameter")
		e.api.Do("POST", "/v1/webhooks/"+whID+"/replay", map[string]any{"start": "2026-03-28T00:00:00Z", "end": "2026-03-27T00:00:00Z"}).ExpectError(t, 400, "invalid_parameter")

		// Another account reaches none of it.
		_, other := e.otherAccount("Other")
		other.Do("GET", "/v1/events/"+e1.ID, nil).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/events/"+e1.ID+"/deliveries", nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/events/"+e1.ID+"/redeliver", nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/webhooks/"+whID+"/retry", nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/webhooks/"+whID+"/replay", map[string]any{"start": "2026-03-28T00:00:00Z", "end": "2026-03-29T00:00:00Z"}).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/webhooks/"+whID+"/deliveries", nil).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/webhooks/"+whID+"/replays/"+rp["id"].(string), nil).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/events", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Fatalf("other account sees %v", list.Data)
		}
	})
}

// TestEventStream: the stream sends new events in order and resumes after
// Last-Event-ID without gaps.
func TestEventStream(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		old := statusEvent(e.acct.ID, "dev_01jq3v8c1kfx9b7n2m4p6r8t0a", e.clock.Now())
		e.recordEvents(old)

		open := func(lastID string) (*bufio.Reader, func()) {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events/stream?types=device.status", nil)
			req.Header.Set("Authorization", "Bearer "+e.key)
			if lastID != "" {
				req.Header.Set("Last-Event-ID", lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			return bufio.NewReader(resp.Body), func() { cancel(); resp.Body.Close() }
		}
		type msg struct{ id, typ, data string }
		next := func(r *bufio.Reader) msg {
			var m msg
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("read stream: %v", err)
				}
				line = strings.TrimRight(line, "\n")
				switch {
				case line == "" && m.data != "":
					return m
				case strings.HasPrefix(line, "id: "):
					m.id = line[4:]
				case strings.HasPrefix(line, "event: "):
					m.typ = line[7:]
				case strings.HasPrefix(line, "data: "):
					m.data = line[6:]
				}
			}
		}
		r, closeStream := open("")
		// Wait for the stream's greeting before recording, so the stream
		// has settled where it starts.
		if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ": PunchConnect event stream") {
			t.Fatalf("greeting %q", line)
		}
		var evs []attendance.Event
		for i := range 3 {
			ev := statusEvent(e.acct.ID, fmt.Sprintf("dev_01jq3v8c1kfx9b7n2m4p6r8t%02d", i), e.clock.Now())
			evs = append(evs, ev)
			e.recordEvents(ev)
		}
		first := next(r)
		if !strings.Contains(first.data, evs[0].ID) || first.typ != "device.status" {
			t.Fatalf("first message %+v; the old event %s must not be streamed", first, old.ID)
		}
		closeStream()
		// Resume after the first: the other two, in order, nothing lost.
		r, closeStream = open(first.id)
		defer closeStream()
		for _, want := range evs[1:] {
			if m := next(r); !strings.Contains(m.data, want.ID) {
				t.Fatalf("resumed stream sent %s, want %s", m.data, want.ID)
			}
		}
		e.api.Do("GET", "/v1/events/stream?types=nope", nil, apitest.Invalid()).ExpectError(t, 400, "unknown_event_type")
		e.api.Do("GET", "/v1/events/stream", nil, apitest.Header("Last-Event-ID", "abc"), apitest.Invalid()).ExpectError(t, 400, "invalid_parameter")
	})
}
