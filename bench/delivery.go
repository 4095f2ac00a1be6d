package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the fast local webhook endpoint of the delivery scenarios:
// it records the event id of every request in arrival order, per path, and
// answers 503 while it is "down".
type receiver struct {
	srv  *http.Server
	url  string
	down atomic.Bool

	mu    sync.Mutex
	paths map[string]*arrivals
	seen  map[string]time.Time // badge number → first arrival
	count atomic.Int64
}

// arrivals are the first arrivals of each event at one path, in order.
type arrivals struct {
	seen  map[string]bool
	first []string
}

func startReceiver() *receiver {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	r := &receiver{url: "http://" + l.Addr().String(), paths: map[string]*arrivals{}, seen: map[string]time.Time{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		at := time.Now()
		// A fast receiver: it picks the two fields it needs out of the body
		// rather than decoding all of it.
		eventID, badge := field(body, `"event_id":"`), field(body, `"badge_number":"`)
		r.mu.Lock()
		a := r.paths[req.URL.Path]
		if a == nil {
			a = &arrivals{seen: map[string]bool{}}
			r.paths[req.URL.Path] = a
		}
		if !a.seen[eventID] {
			a.seen[eventID] = true
			a.first = append(a.first, eventID)
		}
		if _, ok := r.seen[badge]; !ok && badge != "" {
			r.seen[badge] = at
		}
		r.mu.Unlock()
		r.count.Add(1)
	})}
	go r.srv.Serve(l)
	return r
}

// field returns the string value that follows key in a JSON body (the
// first occurrence; values here have no escapes).
func field(body []byte, key string) string {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// inOrder reports how many distinct events path received, and whether
// their first arrivals follow want.
func (r *receiver) inOrder(path string, want []string) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.paths[path]; a != nil {
		return len(a.first), slices.Equal(a.first, want)
	}
	return 0, len(want) == 0
}

func (r *receiver) distinct(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.paths[path]; a != nil {
		return len(a.first)
	}
	return 0
}

// events lists the account's attendance.punch events in recording order.
func (s *server) events() []string {
	var ids []string
	cursor := ""
	for {
		path := "/v1/events?per_page=500&type=attendance.punch"
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
		check(json.Unmarshal(s.api("GET", path, nil), &page))
		for _, e := range page.Data {
			ids = append(ids, e.ID)
		}
		if page.Pagination.NextCursor == nil {
			return ids
		}
		cursor = *page.Pagination.NextCursor
	}
}

// loadPunches records n punches through JSON ingestion (1,000 a request),
// one per employee of a range of badges, a minute apart.
func (s *server) loadPunches(serial string, n, employees int) {
	base := time.Now().Add(-80 * 24 * time.Hour).Truncate(time.Hour) // 100,000 minutes fit before now
	for start := 0; start < n; start += 1000 {
		var ps []map[string]any
		for i := start; i < min(start+1000, n); i++ {
			ps = append(ps, map[string]any{
				"serial_number": serial, "badge_number": strconv.Itoa(1000 + i%employees),
				"timestamp": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339), "external_id": "bench-" + strconv.Itoa(i),
			})
		}
		s.api("POST", "/v1/punches", map[string]any{"punches": ps})
	}
}

// benchLatency: devices send real-time punches at 500/s, then at 20/s; each
// one's latency runs from the device's acknowledgement to the webhook's
// arrival. The quiet phase is where a cluster has no traffic to hide a slow
// hand-over between nodes behind.
func benchLatency(bin, dir string) []result {
	rc := startReceiver()
	defer rc.srv.Close()
	s := startServer(bin, dir, "--allow-private-webhook-urls", "--rate-limit-per-device", "1000000")
	const devices, employees = 50, 20000
	serials := s.setup(devices, employees)
	s.api("POST", "/v1/webhooks", map[string]any{"url": rc.url + "/latency", "events": []string{"attendance.punch"}})
	type phase struct {
		rate, first, total int
		lat                []time.Duration
		early              int
		errs               int64
	}
	var phases []*phase
	first := 0
	for _, rate := range []int{500, 20} {
		// Each employee punches once: no duplicate window.
		p := &phase{rate: rate, first: first, total: min(int(duration.Seconds())*rate, employees-first)}
		first += p.total
		p.lat, p.early, p.errs = latencyPhase(s, rc, serials, p.rate, p.first, p.total)
		phases = append(phases, p)
	}
	rss := s.peakRSS()
	s.stop()
	var out []result
	for _, p := range phases {
		rtt := limitRoundTrip(rc, p.rate, min(2000, 10*p.rate))
		p50, p99 := quantile(p.lat, 0.5), quantile(p.lat, 0.99)
		out = append(out, result{
			name:   fmt.Sprintf("Device OK → webhook received, real-time punches at %d/s (%d devices)", p.rate, devices),
			figure: fmt.Sprintf("p50 %s, p99 %s, max %s (%d of %d delivered, %d errors)", ms(p50), ms(p99), ms(quantile(p.lat, 1)), len(p.lat), p.total, p.errs),
			limit:  fmt.Sprintf("p50 %s, p99 %s loopback round trip", ms(quantile(rtt, 0.5)), ms(quantile(rtt, 0.99))),
			ratio:  fmt.Sprintf("p99 %.1f×", float64(p99)/float64(max(quantile(rtt, 0.99), 1))),
			goal:   "p50 ≤ 10 ms, p99 ≤ 25 ms", met: p50 <= 10*time.Millisecond && p99 <= 25*time.Millisecond, rss: rss,
			note: fmt.Sprintf("%d webhooks arrived before the device read its OK (counted as 0); the limit is one event-sized POST to the same receiver at %d/s", p.early, p.rate),
		})
	}
	return out
}

// latencyPhase sends total single-punch uploads at rate, employees first to
// first+total-1, and returns each delivered one's latency (sorted), how many
// webhooks arrived before their device's OK, and the failed uploads.
func latencyPhase(s *server, rc *receiver, serials []string, rate, first, total int) ([]time.Duration, int, int64) {
	devices := len(serials)
	before := rc.distinct("/latency")
	acks := make([]time.Time, total)
	var errs atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range total {
		<-tick.C
		sem <- struct{}{}
		n := first + i
		wg.Go(func() {
			defer func() { <-sem }()
			line := fmt.Sprintf("%d\t%s\t0\t1\t0\t0\t0\n", 1000+n, time.Now().In(kolkata).Format("2006-01-02 15:04:05"))
			reply, err := post(s.deviceURL(n%devices)+"/iclock/cdata?SN="+serials[n%devices]+"&table=ATTLOG&Stamp=1", []byte(line))
			if err != nil || reply != "OK: 1" {
				errs.Add(1)
				return
			}
			acks[i] = time.Now()
		})
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for rc.distinct("/latency") < before+total-int(errs.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var lat []time.Duration
	early := 0
	for i, ack := range acks {
		at, ok := rc.seen[strconv.Itoa(1000+first+i)]
		if !ok || ack.IsZero() {
			continue
		}
		d := at.Sub(ack)
		if d < 0 {
			early++ // the webhook arrived before the device read its OK
			d = 0
		}
		lat = append(lat, d)
	}
	return sortedCopy(lat), early, errs.Load()
}

// benchDrain: a receiver is down while a backlog of events builds up; when
// it returns (and POST /retry probes at once) the backlog drains in order.
// With one endpoint this is the sustained in-order delivery rate; with 20
// endpoints every event goes to each.
func benchDrain(bin, dir string, endpoints, events int) []result {
	rc := startReceiver()
	defer rc.srv.Close()
	s := startServer(bin, dir, "--allow-private-webhook-urls", "--rate-limit-per-device", "1000000")
	const employees = 5000
	serials := s.setup(1, employees)
	var hooks []string
	for i := range endpoints {
		var w struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		check(json.Unmarshal(s.api("POST", "/v1/webhooks", map[string]any{"url": fmt.Sprintf("%s/drain/%d", rc.url, i), "events": []string{"attendance.punch"}}), &w))
		hooks = append(hooks, w.Data.ID)
	}
	rc.down.Store(true)
	loadStart := time.Now()
	s.loadPunches(serials[0], events, employees)
	loaded := time.Since(loadStart)
	want := s.events()
	rc.down.Store(false)
	start := time.Now()
	for _, h := range hooks {
		s.api("POST", "/v1/webhooks/"+h+"/retry", map[string]any{})
	}
	deadline := start.Add(3 * time.Minute)
	done := func() bool {
		for i := range endpoints {
			if rc.distinct(fmt.Sprintf("/drain/%d", i)) < len(want) {
				return false
			}
		}
		return true
	}
	for !done() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	ordered, complete := 0, 0
	for i := range endpoints {
		n, ok := rc.inOrder(fmt.Sprintf("/drain/%d", i), want)
		if ok {
			ordered++
		}
		if n == len(want) {
			complete++
		}
	}
	deliveries := endpoints * len(want)
	rate := float64(deliveries) / el.Seconds()
	rss := s.peakRSS()
	requests := rc.count.Load() // before the limit adds its own
	s.stop()
	if endpoints == 1 {
		limit := limitDeliveries(rc, 1)
		return []result{{
			name:   fmt.Sprintf("Ordered deliveries/s to one endpoint: drain of a %d-event backlog after an outage", len(want)),
			figure: fmt.Sprintf("%.0f; drained in %.1f s, %s", rate, el.Seconds(), map[bool]string{true: "in order", false: "NOT complete and in order"}[ordered == 1 && complete == 1]),
			limit:  fmt.Sprintf("%.0f sequential POSTs/s (%.1f s for the backlog)", limit, float64(len(want))/limit),
			ratio:  ratio(rate, limit), goal: "≥ 5,000/s; drained ≤ 30 s", met: rate >= 5000 && el <= 30*time.Second && ordered == 1 && complete == 1, rss: rss,
			note: fmt.Sprintf("backlog recorded through POST /v1/punches in %.1f s while the receiver answered 503; %d requests in all; the limit is one connection POSTing event-sized bodies to the same receiver, one at a time",
				loaded.Seconds(), requests),
		}}
	}
	limit := limitDeliveries(rc, endpoints)
	return []result{{
		name:   fmt.Sprintf("Ordered deliveries/s across %d endpoints (%d events each)", endpoints, len(want)),
		figure: fmt.Sprintf("%.0f; %d of %d endpoints complete and in order", rate, min(ordered, complete), endpoints),
		limit:  fmt.Sprintf("%.0f concurrent POSTs/s (%d connections)", limit, endpoints),
		ratio:  ratio(rate, limit), goal: "≥ 5,000/s", met: rate >= 5000 && min(ordered, complete) == endpoints, rss: rss,
		note: fmt.Sprintf("backlog recorded in %.1f s while the receiver answered 503; %d requests in all", loaded.Seconds(), requests),
	}}
}
