// Command bench measures PunchConnect on this machine, over loopback only,
// bounded in time and requests, and appends the results to bench/RESULTS.md.
//
//	go run ./bench                                  # every scenario on SQLite, PostgreSQL, 3 PostgreSQL nodes
//	go run ./bench -stores sqlite -scenarios ingest # one scenario on one store
//	go run ./bench -postgres-url postgres://…       # PostgreSQL of your own (fresh databases are made on it)
//
// It builds the real binary, starts `punchconnect serve` (one or three nodes)
// on a fresh store for each scenario, and drives it with the device
// simulator's code and plain HTTP clients. Beside each figure it measures the
// limit of this machine for the same kind of work (limits.go). Without
// -postgres-url it starts a throwaway PostgreSQL with .ci/start-postgres
// when it can (root, PostgreSQL 15), and skips PostgreSQL otherwise.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	scenarios = flag.String("scenarios", "ingest,realtime,latency,drain,fanout,query,batch", "comma-separated scenarios to run")
	stores    = flag.String("stores", "sqlite,postgres,postgres3", "stores to run them on: sqlite, postgres (one node), postgres3 (three nodes on one database)")
	pgURL     = flag.String("postgres-url", os.Getenv("PUNCHCONNECT_BENCH_POSTGRES_URL"), "PostgreSQL server to make fresh databases on (default: a throwaway cluster started with .ci/start-postgres, when this machine can)")
	out       = flag.String("out", "bench/RESULTS.md", "results file to append to")
	queryRows = flag.Int("query-rows", 10_000_000, "punches stored for the query scenario")
	duration  = flag.Duration("duration", 15*time.Second, "how long each load scenario runs at most")
	pprofAddr = flag.String("pprof-addr", "", "serve the (first) server's pprof on this address while benchmarking")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "punchbench")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "punchconnect")
	run("go", "build", "-o", bin, "./cmd/punchconnect")
	began = time.Now()
	for _, name := range strings.Split(*stores, ",") {
		t, ok := targets[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown store %q\n", name)
			os.Exit(2)
		}
		if t.postgres && !postgresReady() {
			sections = append(sections, section{target: t, skipped: "no PostgreSQL: pass -postgres-url, or run as root with PostgreSQL 15 installed"})
			continue
		}
		cur = t
		sections = append(sections, section{target: t})
		sec := &sections[len(sections)-1]
		for _, sc := range strings.Split(*scenarios, ",") {
			sc = strings.TrimSpace(sc)
			fmt.Fprintf(os.Stderr, "--- %s: %s\n", t.name, sc)
			switch sc {
			case "ingest":
				sec.results = append(sec.results, benchIngest(bin, dir)...)
			case "realtime":
				sec.results = append(sec.results, benchRealtime(bin, dir)...)
			case "query":
				if t.nodes > 1 {
					continue // the same database and queries as one node: nothing new to learn
				}
				sec.results = append(sec.results, benchQuery(bin, dir)...)
			case "latency":
				sec.results = append(sec.results, benchLatency(bin, dir)...)
			case "drain":
				sec.results = append(sec.results, benchDrain(bin, dir, 1, 100_000)...)
			case "fanout":
				sec.results = append(sec.results, benchDrain(bin, dir, 20, 5_000)...)
			case "batch":
				sec.results = append(sec.results, benchBatch(bin, dir)...)
			default:
				fmt.Fprintf(os.Stderr, "unknown scenario %q\n", sc)
				os.Exit(2)
			}
		}
	}
	stopPostgres()
	write(sections, time.Since(began), "")
}

var (
	began    time.Time
	sections []section // measured so far
)

// check ends the run on an error, writing what was measured before it.
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stopPostgres()
		if len(sections) > 0 || cur.name != "" {
			write(sections, time.Since(began), err.Error())
		}
		os.Exit(1)
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

// server is a running deployment: one `punchconnect serve`, or several on
// one PostgreSQL database. Devices are spread over the nodes; API calls go
// to the first.
type server struct {
	nodes []*node
	url   string   // the first node
	urls  []string // every node
	key   string
	dbURL string // "" for SQLite in the first node's directory
}

type node struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

var servingURL = regexp.MustCompile(`url=(http://\S+)`)
var keyLine = regexp.MustCompile(`API key: (pcsk_\S+)`)

// startServer starts the current target on a fresh store.
func startServer(bin, dir string, extra ...string) *server {
	s := &server{dbURL: freshDatabase()}
	s.start(bin, dir, extra...)
	if s.key == "" {
		check(fmt.Errorf("no API key printed: the store was not empty"))
	}
	return s
}

// start starts the target's nodes on s's store; key is what the first
// printed (only an empty store makes one).
func (s *server) start(bin, dir string, extra ...string) {
	for i := range cur.nodes {
		work, err := os.MkdirTemp(dir, "srv")
		check(err)
		args := append([]string{"--addr", "127.0.0.1:0"}, extra...)
		if s.dbURL != "" {
			args = append(args, "--database-url", s.dbURL)
		}
		n, key := startNode(bin, work, i == 0, args...)
		if i == 0 {
			s.key = key
		}
		s.nodes = append(s.nodes, n)
		s.urls = append(s.urls, n.url)
	}
	s.url = s.urls[0]
}

// deviceURL is the node device i talks to.
func (s *server) deviceURL(i int) string { return s.urls[i%len(s.urls)] }

// startNode starts serve in the work directory work.
func startNode(bin, work string, first bool, args ...string) (*node, string) {
	args = append([]string{"serve"}, args...)
	if *pprofAddr != "" && first {
		args = append(args, "--pprof-addr", *pprofAddr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = work
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	check(cmd.Start())
	n := &node{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); pw.Close(); close(n.done) }()
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlCh <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case n.url = <-urlCh:
	case <-time.After(60 * time.Second):
		check(fmt.Errorf("server did not start"))
	}
	key := ""
	if m := keyLine.FindStringSubmatch(stdout.String()); m != nil {
		key = m[1]
	}
	return n, key
}

func (s *server) stop() {
	for _, n := range s.nodes {
		n.cmd.Process.Signal(os.Interrupt)
	}
	for _, n := range s.nodes {
		<-n.done
	}
}

// restart starts the stopped deployment again on the same store.
func (s *server) restart(bin, dir string) *server {
	r := &server{dbURL: s.storeURL()}
	r.start(bin, dir)
	r.key = s.key
	return r
}

func (s *server) sqlitePath() string {
	return filepath.Join(s.nodes[0].cmd.Dir, "data", "punchconnect.db")
}

// storeURL is the database/sql location of the store, for the limits and
// the query scenario's loader.
func (s *server) storeURL() string {
	if s.dbURL != "" {
		return s.dbURL
	}
	return "sqlite://" + s.sqlitePath()
}

// peakRSS is the highest resident set of any node, from /proc.
func (s *server) peakRSS() float64 {
	peak := 0.0
	for _, n := range s.nodes {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				kb, _ := strconv.Atoi(f[1])
				peak = max(peak, float64(kb)/1024)
			}
		}
	}
	return peak
}

func (s *server) api(method, path string, body any) []byte {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		check(fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data))
	}
	return data
}

// setup registers devices and employees.
func (s *server) setup(devices, employees int) []string {
	emps := make([]map[string]any, employees)
	for i := range emps {
		emps[i] = map[string]any{"badge_number": strconv.Itoa(1000 + i), "name": fmt.Sprintf("Employee %d", i)}
	}
	for start := 0; start < len(emps); start += 5000 {
		s.api("POST", "/v1/employees/batch", map[string]any{"employees": emps[start:min(start+5000, len(emps))]})
	}
	serials := make([]string, devices)
	for i := range serials {
		serials[i] = fmt.Sprintf("BENCH%05d", i)
		s.api("POST", "/v1/devices", map[string]any{"serial_number": serials[i], "timezone": "Asia/Kolkata"})
	}
	return serials
}

var kolkata, _ = time.LoadLocation("Asia/Kolkata")

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

func post(url string, body []byte) (string, error) {
	resp, err := client.Post(url, "text/plain", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// benchIngest: devices upload offline backlogs in 100-line ATTLOG batches,
// as fast as the server acknowledges them. Limit: the same number of rows
// written straight into the same table, 100 to a durable transaction.
func benchIngest(bin, dir string) []result {
	s := startServer(bin, dir)
	const devices, perDeviceEmployees, batch = 16, 500, 100
	serials := s.setup(devices, devices*perDeviceEmployees)
	base := time.Now().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	const perDevice = 40_000 // 500 employees × 4 punches a day × 20 days offline
	cpu0 := cpuNow(s, cur.postgres)
	acked, _, errs, el := drive(devices, perDevice/batch, time.Now().Add(*duration), func(d, k int) error {
		var b bytes.Buffer
		for i := range batch {
			n := k*batch + i
			emp := n % perDeviceEmployees
			slot := n / perDeviceEmployees // 4 slots a day
			t := base.Add(time.Duration(slot)*6*time.Hour + time.Duration(emp*7)*time.Second)
			fmt.Fprintf(&b, "%d\t%s\t%d\t1\t0\t0\t0\n", 1000+d*perDeviceEmployees+emp, t.Format("2006-01-02 15:04:05"), slot%2)
		}
		reply, err := post(s.deviceURL(d)+"/iclock/cdata?SN="+serials[d]+"&table=ATTLOG&Stamp=1", b.Bytes())
		if err == nil && reply != "OK: "+strconv.Itoa(batch) {
			err = fmt.Errorf("reply %q", reply)
		}
		return err
	})
	punches := acked * batch
	cpu := cpuNow(s, cur.postgres).perOp(cpu0, punches, "punch")
	rate := float64(punches) / el.Seconds()
	rss := s.peakRSS()
	s.stop()
	writers := devices
	if !cur.postgres {
		writers = 1
	}
	limit, limitCPU := limitInsert(s, int(min(punches, 200_000)), writers)
	return []result{{
		name:   "Backlog ingest, punches/s (16 devices, 100-line ATTLOG batches, acknowledged once durable)",
		figure: fmt.Sprintf("%.0f (%d errors)", rate, errs),
		limit:  fmt.Sprintf("%.0f raw inserts/s", limit), ratio: ratio(rate, limit),
		goal: "≥ 30,000", met: rate >= 30_000, rss: rss,
		note: joinNotes(fmt.Sprintf("%d punches in %.1f s; the limit inserts %d of the same rows into the punches table (all its indexes), 100 to a durable transaction, %d writer(s), with no parsing, look-ups, normalization or events",
			punches, el.Seconds(), min(punches, 200_000), writers), cpu,
			strings.Replace(limitCPU, "CPU a row", "the limit's CPU a row", 1)),
	}}
}

// benchRealtime: many devices each send one punch per request. Limit: a
// bare Go HTTP handler that only appends the body to a file and fsyncs.
func benchRealtime(bin, dir string) []result {
	s := startServer(bin, dir)
	const devices, employees, workers = 200, 50000, 64
	serials := s.setup(devices, employees)
	cpu0 := cpuNow(s, cur.postgres)
	acked, lat, errs, el := drive(workers, 50_000, time.Now().Add(*duration), func(w, k int) error {
		n := w + k*workers // the n-th punch of the run
		// Real time: each employee punches now and then, each time on the
		// next device, so that every punch is accepted and recorded as an
		// event (the same device within the duplicate window would reject
		// it, which costs less). 50,000 employees: at this rate each
		// punches about once a run, as people do a few times a day; with
		// 5,000 each punched every second or two, and every punch read the
		// employee's day of earlier punches, ten times what a real day has.
		d := (n + n/employees) % devices
		line := fmt.Sprintf("%d\t%s\t0\t1\t0\t0\t0\n", 1000+n%employees, time.Now().In(kolkata).Format("2006-01-02 15:04:05"))
		reply, err := post(s.deviceURL(d)+"/iclock/cdata?SN="+serials[d]+"&table=ATTLOG&Stamp=1", []byte(line))
		if err == nil && reply != "OK: 1" {
			err = fmt.Errorf("reply %q", reply)
		}
		return err
	})
	cpu := cpuNow(s, cur.postgres).perOp(cpu0, acked, "request")
	rate := float64(acked) / el.Seconds()
	rss := s.peakRSS()
	s.stop()
	limit, limitLat, limitCPU := limitFsyncHandler(dir, workers)
	return []result{{
		name:   "Real-time single-punch device requests/s (200 devices, 64 at once)",
		figure: fmt.Sprintf("%.0f (p50 %s, p99 %s; %d errors)", rate, ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), errs),
		limit:  fmt.Sprintf("%.0f (p50 %s, p99 %s)", limit, ms(quantile(limitLat, 0.5)), ms(quantile(limitLat, 0.99))),
		ratio:  ratio(rate, limit), goal: "≥ 5,000", met: rate >= 5000, rss: rss,
		note: joinNotes("the limit is a bare Go handler that appends the body to a file and fsyncs it, driven by the same 64 clients", cpu,
			strings.Replace(limitCPU, "CPU a request", "the limit's CPU a request", 1)),
	}}
}

func output(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return string(b)
}
