package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/mail"
)

const seedSecret = "whsec_your_signing_secret"

// hookReceiver is a webhook endpoint on loopback that checks the seed's
// signature and records what it took.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []string // event ids of signed requests it took, in arrival order
	status int      // answer; 0: 200
	delay  time.Duration
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(seedSecret))
		m.Write(body)
		if r.Header.Get("X-PunchConnect-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(body, &ev)
		h.mu.Lock()
		status, delay := h.status, h.delay
		if status == 0 || status < 300 {
			h.events = append(h.events, ev.EventID)
		}
		h.mu.Unlock()
		time.Sleep(delay)
		if status != 0 {
			w.WriteHeader(status)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func (h *hookReceiver) set(status int, delay time.Duration) {
	h.mu.Lock()
	h.status, h.delay = status, delay
	h.mu.Unlock()
}

// firstEach keeps the first occurrence of each id, in order.
func firstEach(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// eventIDs lists the account's events of a type, in recording order.
func eventIDs(t *testing.T, api *apitest.Client, typ string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		path := "/v1/events?per_page=500&type=" + typ
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Pagination struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"pagination"`
		}
		api.Do("GET", path, nil).Expect(t, 200).JSON(t, &page)
		for _, e := range page.Data {
			ids = append(ids, e.ID)
		}
		if page.Pagination.NextCursor == nil {
			return ids
		}
		cursor = *page.Pagination.NextCursor
	}
}

// setupPunches registers a device and n employees for postPunches.
func setupPunches(t *testing.T, api *apitest.Client, n int) {
	t.Helper()
	api.Do("POST", "/v1/devices", map[string]any{"serial_number": "E2E0000001", "timezone": "UTC"}).Expect(t, 201)
	var emps []any
	for i := range n {
		emps = append(emps, map[string]any{"badge_number": fmt.Sprint(1000 + i), "name": fmt.Sprintf("Employee %d", i)})
	}
	api.Do("POST", "/v1/employees/batch", map[string]any{"employees": emps}).Expect(t, 200)
}

// postPunches sends count punches through JSON ingestion, a minute apart
// from base, over the n employees.
func postPunches(t *testing.T, api *apitest.Client, base time.Time, from, count, n int) {
	t.Helper()
	for start := from; start < from+count; start += 500 {
		var ps []any
		for i := start; i < min(start+500, from+count); i++ {
			ps = append(ps, map[string]any{
				"serial_number": "E2E0000001", "badge_number": fmt.Sprint(1000 + i%n),
				"timestamp": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339), "external_id": fmt.Sprintf("e2e-%d", i),
			})
		}
		api.Do("POST", "/v1/punches", map[string]any{"punches": ps}).Expect(t, 200)
	}
}

// waitUntil polls cond (real time, bounded).
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeliveryEndToEnd: punches in, signed events out to a registered URL,
// in order, with the attempt log to show for it.
func TestDeliveryEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		p := serve(t, t.TempDir(), env, "--allow-private-webhook-urls")
		api := apitest.New(t, p.URL, p.firstKey())
		rc := newHookReceiver(t)
		wh := api.Do("POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/webhooks/attendance", "events": []string{"attendance.punch", "device.status"}, "secret": seedSecret}).Expect(t, 201).Data(t)
		setupPunches(t, api, 50)
		postPunches(t, api, time.Now().Add(-24*time.Hour), 0, 600, 50)
		want := eventIDs(t, api, "attendance.punch")
		if len(want) != 600 {
			t.Fatalf("%d punch events, want 600", len(want))
		}
		waitUntil(t, "all events delivered", 60*time.Second, func() bool { return len(firstEach(rc.got())) >= len(want) })
		got := firstEach(rc.got())
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("event %d arrived as %s, want %s: out of order", i, got[i], want[i])
			}
		}
		var ds struct {
			Data []map[string]any `json:"data"`
		}
		api.Do("GET", "/v1/events/"+want[0]+"/deliveries", nil).Expect(t, 200).JSON(t, &ds)
		if len(ds.Data) != 1 || ds.Data[0]["status"] != "delivered" || ds.Data[0]["webhook_id"] != wh["id"] {
			t.Fatalf("deliveries of the first event: %v", ds.Data)
		}
		p.signal(syscall.SIGTERM)
	})
}

// TestDeliveryKill9: the server is killed without warning while it
// delivers; after a restart every event arrives — at least once, first
// arrivals in order.
func TestDeliveryKill9(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		dir := t.TempDir()
		p := serve(t, dir, env, "--allow-private-webhook-urls")
		key := p.firstKey()
		api := apitest.New(t, p.URL, key)
		rc := newHookReceiver(t)
		rc.set(0, 2*time.Millisecond)
		api.Do("POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"attendance.punch"}, "secret": seedSecret}).Expect(t, 201)
		setupPunches(t, api, 50)
		postPunches(t, api, time.Now().Add(-24*time.Hour), 0, 2000, 50)
		want := eventIDs(t, api, "attendance.punch")
		waitUntil(t, "deliveries under way", 30*time.Second, func() bool { return len(rc.got()) >= 200 })
		p.signal(syscall.SIGKILL)
		before := len(firstEach(rc.got()))
		if before >= len(want) {
			t.Fatal("everything was delivered before the kill; the test proves nothing")
		}
		rc.set(0, 0)
		p2 := serve(t, dir, env, "--allow-private-webhook-urls")
		waitUntil(t, "the rest delivered after the restart", 60*time.Second, func() bool { return len(firstEach(rc.got())) >= len(want) })
		got := firstEach(rc.got())
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("event %d arrived as %s, want %s", i, got[i], want[i])
			}
		}
		t.Logf("delivered before the kill: %d of %d; sent twice: %d", before, len(want), len(rc.got())-len(want))
		p2.signal(syscall.SIGTERM)
	})
}

// TestFailureMail: with a short schedule, an endpoint that keeps failing
// gets the first attempt and one per offset; the delivery then fails and
// the account gets one e-mail over SMTP.
func TestFailureMail(t *testing.T) {
	sink, err := mail.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	p := serve(t, t.TempDir(), nil, "--allow-private-webhook-urls", "--webhook-retry-schedule", "1s,2s",
		"--smtp-url", sink.URL, "--smtp-from", "PunchConnect <alerts@punchconnect.test>", "--bootstrap-email", "ops@acme.test")
	api := apitest.New(t, p.URL, p.firstKey())
	rc := newHookReceiver(t)
	rc.set(http.StatusBadGateway, 0)
	wh := api.Do("POST", "/v1/webhooks", map[string]any{"url": rc.URL, "secret": seedSecret}).Expect(t, 201).Data(t)
	setupPunches(t, api, 1)
	postPunches(t, api, time.Now().Add(-time.Hour), 0, 3, 1)
	waitUntil(t, "the failure e-mail", 30*time.Second, func() bool { return len(sink.Messages()) > 0 })
	m := sink.Messages()[0]
	if m.To[0] != "ops@acme.test" || !strings.Contains(m.Subject, rc.URL) || !strings.Contains(m.Body, "502 Bad Gateway") {
		t.Fatalf("e-mail %+v", m)
	}
	var failed struct {
		Data []map[string]any `json:"data"`
	}
	api.Do("GET", "/v1/webhooks/"+wh["id"].(string)+"/deliveries?status=failed", nil).Expect(t, 200).JSON(t, &failed)
	if len(failed.Data) != 3 {
		t.Fatalf("%d failed deliveries, want the 3 events", len(failed.Data))
	}
	for _, id := range eventIDs(t, api, "attendance.punch") {
		if !strings.Contains(m.Body, id) {
			t.Fatalf("the e-mail does not name %s:\n%s", id, m.Body)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("%d e-mails for one incident", n)
	}
	// Recovery: retry re-queues them and they arrive, in order.
	rc.set(0, 0)
	if n := api.Do("POST", "/v1/webhooks/"+wh["id"].(string)+"/retry", nil).Expect(t, 200).Data(t)["requeued"]; n != 3.0 {
		t.Fatalf("requeued %v", n)
	}
	waitUntil(t, "the retried events", 10*time.Second, func() bool { return len(firstEach(rc.got())) == 3 })
	p.signal(syscall.SIGTERM)
}

// freeAddr reserves a loopback port and returns it free.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestListen: `punchconnect listen` forwards events signed with its secret
// and, after the server restarts, resumes without losing the events
// recorded while it was away.
func TestListen(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := serve(t, dir, nil, "--addr", addr)
	key := p.firstKey()
	api := apitest.New(t, p.URL, key)
	setupPunches(t, api, 10)
	rc := newHookReceiver(t)

	cmd := exec.Command(binary, "listen", "--server", p.URL, "--api-key", key, "--forward-to", rc.URL+"/webhooks/attendance",
		"--events", "attendance.punch", "--secret", seedSecret)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitUntil(t, "listen to connect", 30*time.Second, func() bool { return strings.Contains(out.String(), "connected to") })
	if !strings.Contains(out.String(), seedSecret) {
		t.Fatalf("listen does not print its secret:\n%s", out.String())
	}
	base := time.Now().Add(-time.Hour)
	postPunches(t, api, base, 0, 20, 10)
	waitUntil(t, "forwarded events", 30*time.Second, func() bool { return len(rc.got()) >= 20 })

	// The server goes away; events recorded on its return, before listen
	// reconnects, still arrive.
	p.signal(syscall.SIGTERM)
	p2 := serve(t, dir, nil, "--addr", addr)
	api2 := apitest.New(t, p2.URL, key)
	postPunches(t, api2, base, 20, 20, 10)
	waitUntil(t, "events recorded while listen was away", 30*time.Second, func() bool { return len(firstEach(rc.got())) >= 40 })
	want := eventIDs(t, api2, "attendance.punch")
	if got := firstEach(rc.got()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listen forwarded %v\nwant %v", got, want)
	}
	if !strings.Contains(out.String(), "<-- [200] POST "+rc.URL) || !strings.Contains(out.String(), "resuming after event") {
		t.Fatalf("listen output:\n%s", out.String())
	}
	p2.signal(syscall.SIGTERM)
}

// requireSeedHandlers: CI sets it, so missing Flask or Express fails
// there instead of skipping.
const requireSeedHandlers = "PUNCHCONNECT_TEST_REQUIRE_SEED_HANDLERS"

// python is the interpreter that has Flask: PUNCHCONNECT_TEST_PYTHON, else
// python3 on PATH.
func python() string {
	if p := os.Getenv("PUNCHCONNECT_TEST_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

func seedTool(t *testing.T, name string, check *exec.Cmd) {
	t.Helper()
	if out, err := check.CombinedOutput(); err != nil {
		if os.Getenv(requireSeedHandlers) == "1" {
			t.Fatalf("%s is not installed (%s=1): %v\n%s", name, requireSeedHandlers, err, out)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
}

// TestSeedHandlers: the seed's Flask and Express handlers, unchanged,
// verify our signature and take our events — and refuse a wrong signature,
// which shows they really check it.
func TestSeedHandlers(t *testing.T) {
	seedDir, _ := filepath.Abs("testdata/seed")
	for _, h := range []struct {
		name  string
		check *exec.Cmd
		start func(t *testing.T) (url string, cmd *exec.Cmd)
	}{
		{"flask", exec.Command(python(), "-c", "import flask"), func(t *testing.T) (string, *exec.Cmd) {
			addr := freeAddr(t)
			_, port, _ := net.SplitHostPort(addr)
			cmd := exec.Command(python(), "-m", "flask", "--app", "flask_app", "run", "--host", "127.0.0.1", "--port", port)
			cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
			return "http://" + addr + "/webhooks/attendance", cmd
		}},
		{"express", exec.Command("node", "-e", "require('express')"), func(t *testing.T) (string, *exec.Cmd) {
			// The seed listens on port 3000, as written.
			return "http://127.0.0.1:3000/webhooks/attendance", exec.Command("node", "express_app.js")
		}},
	} {
		t.Run(h.name, func(t *testing.T) {
			h.check.Dir = seedDir
			seedTool(t, h.name, h.check)
			url, cmd := h.start(t)
			cmd.Dir = seedDir
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			waitUntil(t, h.name+" to listen", 30*time.Second, func() bool {
				resp, err := http.Get(strings.TrimSuffix(url, "/webhooks/attendance") + "/")
				if err == nil {
					resp.Body.Close()
				}
				return err == nil
			})

			p := serve(t, t.TempDir(), nil, "--allow-private-webhook-urls")
			api := apitest.New(t, p.URL, p.firstKey())
			// The seed's registration body, pointing at the seed's handler.
			good := api.Do("POST", "/v1/webhooks", map[string]any{"url": url, "events": []string{"attendance.punch", "device.status"}, "secret": seedSecret}).Expect(t, 201).Data(t)
			bad := api.Do("POST", "/v1/webhooks", map[string]any{"url": url, "events": []string{"attendance.punch"}, "secret": "whsec_not_the_handlers_secret"}).Expect(t, 201).Data(t)
			setupPunches(t, api, 3)
			postPunches(t, api, time.Now().Add(-time.Hour), 0, 3, 3)
			ids := eventIDs(t, api, "attendance.punch")
			// The last status code of each event's delivery to a webhook.
			codes := func(webhookID string) map[string]float64 {
				var ds struct {
					Data []map[string]any `json:"data"`
				}
				api.Do("GET", "/v1/webhooks/"+webhookID+"/deliveries", nil).Expect(t, 200).JSON(t, &ds)
				out := map[string]float64{}
				for _, d := range ds.Data {
					code, _ := d["last_status_code"].(float64)
					out[d["event_id"].(string)] = code
				}
				return out
			}
			settled := func(webhookID string, want float64) bool {
				c := codes(webhookID)
				for _, id := range ids {
					if c[id] != want {
						time.Sleep(200 * time.Millisecond) // each look is an API call
						return false
					}
				}
				return true
			}
			waitUntil(t, "the handler to take every event", 30*time.Second, func() bool { return settled(good["id"].(string), 200) })
			// The wrong secret: the oldest event is refused with 401 (and the
			// rest wait behind it, as behind any failing endpoint).
			waitUntil(t, "the handler to refuse the wrong signature", 30*time.Second, func() bool {
				c := codes(bad["id"].(string))
				if c[ids[0]] == 0 {
					time.Sleep(200 * time.Millisecond)
					return false
				}
				for _, code := range c {
					if code != 0 && code != 401 {
						t.Fatalf("the handler answered %v to a wrong signature", code)
					}
				}
				return true
			})
			waitUntil(t, "the handler's log", 10*time.Second, func() bool { return strings.Count(out.String(), "punched in at") >= 1 })
			t.Logf("%s handler said:\n%s", h.name, out.String())
			p.signal(syscall.SIGTERM)
		})
	}
}
