package main

// The limits of this machine: the least work of the same kind as each
// scenario, measured in the same run, so every figure is read against what
// the hardware can do at all.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// drive runs do from workers goroutines until deadline (or max calls per
// worker) and returns the successful calls' count, latencies, the failures
// and the elapsed time.
func drive(workers, maxPer int, deadline time.Time, do func(w, k int) error) (int64, []time.Duration, int64, time.Duration) {
	var ok, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; k < maxPer && time.Now().Before(deadline); k++ {
				t0 := time.Now()
				if err := do(w, k); err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return ok.Load(), sortedCopy(all), errs.Load(), el
}

// limitInsert: the rows ingest stores, written straight into the stopped
// server's punches table (with all its indexes), 100 to a transaction as
// one device batch, each commit durable; writers at once (SQLite has one
// writer whatever the number). Returns rows per second and the CPU a row
// cost (PostgreSQL's processes and the bench's, in which SQLite runs).
func limitInsert(s *server, rows, writers int) (float64, string) {
	db, driver := openStoreDB(s.storeURL())
	defer db.Close()
	ctx := context.Background()
	var acct string
	check(db.QueryRowContext(ctx, "SELECT id FROM accounts ORDER BY created_at LIMIT 1").Scan(&acct))
	var devs, serials, emps []string
	r, err := db.QueryContext(ctx, "SELECT id, serial_number FROM devices ORDER BY serial_number")
	check(err)
	for r.Next() {
		var id, sn string
		check(r.Scan(&id, &sn))
		devs, serials = append(devs, id), append(serials, sn)
	}
	r.Close()
	emps = queryStrings(ctx, db, "SELECT id FROM employees ORDER BY badge_number")
	const batch = 100
	rows = rows / batch * batch
	g := &rowGen{acct: acct, devs: devs, serials: serials, emps: emps, span: 20 * 24 * time.Hour, n: rows,
		base: time.Now().AddDate(0, 0, -60), rng: rand.New(rand.NewPCG(3, 4)), key: "limit"}
	// Arguments are made before the clock starts: the limit is the store's.
	args := make([][]any, rows/batch)
	for i := range args {
		args[i] = g.rows(i*batch, batch)
	}
	insert := insertSQL(driver, batch)
	var next atomic.Int64
	cpu0 := cpuNow(nil, cur.postgres)
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(args) {
					return
				}
				tx, err := db.BeginTx(ctx, nil)
				check(err)
				_, err = tx.ExecContext(ctx, insert, args[i]...)
				check(err)
				check(tx.Commit())
			}
		})
	}
	wg.Wait()
	return float64(rows) / time.Since(start).Seconds(), cpuNow(nil, cur.postgres).perOp(cpu0, int64(rows), "row")
}

// limitFsyncHandler: a bare Go HTTP handler that reads the request,
// appends it to a file and fsyncs before answering, driven by the same
// clients as the real-time scenario. Returns requests per second, the
// latencies and the CPU a request cost.
func limitFsyncHandler(dir string, workers int) (float64, []time.Duration, string) {
	f, err := os.OpenFile(filepath.Join(dir, "fsync-limit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	defer f.Close()
	srv, base := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := f.Write(body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := f.Sync(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "OK: 1")
	}))
	defer srv.Close()
	line := []byte("1000\t2026-11-30 09:00:00\t0\t1\t0\t0\t0\n")
	cpu0 := cpuNow(nil, false)
	n, lat, _, el := drive(workers, 50_000, time.Now().Add(min(*duration, 5*time.Second)), func(w, k int) error {
		_, err := post(base+"/iclock/cdata?SN=LIMIT&table=ATTLOG", line)
		return err
	})
	return float64(n) / el.Seconds(), lat, cpuNow(nil, false).perOp(cpu0, n, "request")
}

func serveLoopback(h http.Handler) (*http.Server, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	return srv, "http://" + l.Addr().String()
}

// webhookBody is a body the size and shape of an attendance.punch event.
func webhookBody(n int) []byte {
	return fmt.Appendf(nil, `{"event_id":"evt_limit%010d","event_type":"attendance.punch","created_at":"2026-11-30T09:00:00.000000Z",`+
		`"data":{"punch_id":"pun_01jq3v8c1kfx9b7n2m4p6r8t0a","employee_id":"emp_01jq3v8c1kfx9b7n2m4p6r8t0b","badge_number":"L%d",`+
		`"employee_name":"Simulated Employee","device_id":"dev_01jq3v8c1kfx9b7n2m4p6r8t0c","device_serial":"BENCH00001",`+
		`"site":"HQ","timestamp":"2026-11-30T09:00:00Z","local_time":"2026-11-30T14:30:00+05:30","local_date":"2026-11-30",`+
		`"direction":"in","direction_source":"device","method":"fingerprint","source":"push","received_at":"2026-11-30T09:00:00.1Z"}}`, n, n)
}

// limitRoundTrip: one loopback HTTP POST of an event-sized body to the
// bench's receiver at rate requests a second, count of them. Returns the
// sorted latencies.
func limitRoundTrip(rc *receiver, rate, count int) []time.Duration {
	c := &http.Client{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var lat []time.Duration
	for i := range count {
		<-tick.C
		t0 := time.Now()
		resp, err := c.Post(rc.url+"/limit-rtt", "application/json", bytes.NewReader(webhookBody(i)))
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	return sortedCopy(lat)
}

// limitDeliveries: event-sized POSTs to the bench's receiver, as fast as it
// answers, from one connection one at a time (the limit of ordered delivery
// to one endpoint), or from workers at once to as many paths.
func limitDeliveries(rc *receiver, workers int) float64 {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	n, _, _, el := drive(workers, 100_000, time.Now().Add(min(*duration, 5*time.Second)), func(w, k int) error {
		resp, err := c.Post(fmt.Sprintf("%s/limit/%d", rc.url, w), "application/json", bytes.NewReader(webhookBody(w*1_000_000+k)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	})
	return float64(n) / el.Seconds()
}
