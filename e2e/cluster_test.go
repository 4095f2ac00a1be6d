package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/simulator"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// balancer is a round-robin load balancer in front of the nodes: a request
// goes to the next node, or, when that node does not answer, to the one
// after it — as any health-checking load balancer does.
type balancer struct {
	*httptest.Server
	mu    sync.Mutex
	nodes []string
	next  atomic.Uint64
}

func newBalancer(t *testing.T, nodes ...string) *balancer {
	b := &balancer{nodes: nodes}
	client := &http.Client{Timeout: 30 * time.Second}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		nodes := append([]string(nil), b.nodes...)
		b.mu.Unlock()
		start := int(b.next.Add(1))
		for i := range nodes {
			node := nodes[(start+i)%len(nodes)]
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, node+r.URL.RequestURI(), bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				continue // node down: the next one
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no node answered", http.StatusBadGateway)
	}))
	t.Cleanup(b.Close)
	return b
}

// TestClusterNodeKilled: three nodes share one PostgreSQL behind a load
// balancer; simulated devices push through it and a webhook receiver counts
// what arrives. One node is killed with kill -9 mid-stream. Every record the
// devices made is stored once, every punch event reaches the endpoint —
// first arrivals in recording order — and duplicates are counted.
func TestClusterNodeKilled(t *testing.T) {
	pg, ok := storetest.PostgresBackend(t)
	if !ok {
		t.Skip(storetest.PostgresURLEnv + " is not set")
	}
	env := []string{"PUNCHCONNECT_DATABASE_URL=" + pg.NewURL(t)}
	flags := []string{"--allow-private-webhook-urls", "--device-poll-interval", "1s"}
	n1 := serve(t, t.TempDir(), env, flags...)
	key := n1.firstKey()
	n2 := serve(t, t.TempDir(), env, flags...)
	n3 := serve(t, t.TempDir(), env, flags...)
	lb := newBalancer(t, n1.URL, n2.URL, n3.URL)
	api := apitest.New(t, lb.URL, key)
	rc := newHookReceiver(t)
	api.Do("POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"attendance.punch"}, "secret": seedSecret}).Expect(t, 201)

	fleet := &simulator.Fleet{Server: lb.URL, APIKey: key, Plan: simulator.Plan{Devices: 6, Employees: 40, PunchesPerMinute: 240, BatchSize: 5}, Log: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := fleet.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range fleet.Devices {
		d.KeepLog()
	}
	done := make(chan struct{})
	go func() { fleet.Run(ctx); close(done) }()

	time.Sleep(4 * time.Second)
	n2.signal(syscall.SIGKILL)
	lb.mu.Lock()
	lb.nodes = []string{n1.URL, n3.URL} // the balancer's health check notices
	lb.mu.Unlock()
	time.Sleep(4 * time.Second)
	cancel()
	<-done
	made := allStoredOnce(t, api, fleet, "after the kill")
	accepted := total(t, api, "/v1/attendance?per_page=1")
	want := eventIDs(t, api, "attendance.punch")
	if len(want) != accepted {
		t.Fatalf("%d punches accepted but %d attendance.punch events", accepted, len(want))
	}
	// The dead node's leases expire (15 s) and another node resumes.
	waitUntil(t, "every punch event delivered", 90*time.Second, func() bool { return len(firstEach(rc.got())) >= len(want) })
	got := firstEach(rc.got())
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d arrived as %s, want %s: out of order", i, got[i], want[i])
		}
	}
	dups := len(rc.got()) - len(want)
	t.Logf("%d records made and stored once (%d accepted punches, the rest rejected as duplicates or unknown badges); %d punch events delivered in order; %d sent twice (at-least-once, after the kill)", made, accepted, len(want), dups)
	if made == 0 || len(want) == 0 {
		t.Fatal("nothing happened; the test proves nothing")
	}
	if strings.Count(n2.stderr.String(), "msg=serving") != 1 {
		t.Fatal("node 2 did not serve before it was killed")
	}
	n1.signal(syscall.SIGTERM)
	n3.signal(syscall.SIGTERM)
}
