// Command bench measures PunchConnect on this machine, over loopback only,
// bounded in time and requests, and writes bench/RESULTS.md.
//
//	go run ./bench                       # every scenario, SQLite
//	go run ./bench -scenarios ingest     # one scenario
//	go run ./bench -database-url postgres://…   # against PostgreSQL
//
// It builds the real binary, starts `punchconnect serve` on a fresh store in a
// temporary directory, and drives it with the device simulator's code and
// plain HTTP clients.
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	scenarios   = flag.String("scenarios", "ingest,realtime,query,latency,drain,fanout,batch", "comma-separated scenarios to run")
	databaseURL = flag.String("database-url", "", "store to test (default: SQLite in a temporary directory)")
	out         = flag.String("out", "bench/RESULTS.md", "results file to write")
	queryRows   = flag.Int("query-rows", 10_000_000, "punches stored for the query scenario")
	duration    = flag.Duration("duration", 15*time.Second, "how long each load scenario runs at most")
)

type result struct {
	name, figure, goal, note string
}

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "punchbench")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "punchconnect")
	run("go", "build", "-o", bin, "./cmd/punchconnect")

	var results []result
	for _, s := range strings.Split(*scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "ingest":
			results = append(results, benchIngest(bin, dir)...)
		case "realtime":
			results = append(results, benchRealtime(bin, dir)...)
		case "query":
			results = append(results, benchQuery(bin, dir)...)
		case "latency":
			results = append(results, benchLatency(bin, dir)...)
		case "drain":
			results = append(results, benchDrain(bin, dir, 1, 100_000)...)
		case "fanout":
			results = append(results, benchDrain(bin, dir, 20, 5_000)...)
		case "batch":
			results = append(results, benchBatch(bin, dir)...)
		default:
			fmt.Fprintf(os.Stderr, "unknown scenario %q\n", s)
			os.Exit(2)
		}
	}
	write(results)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

// server is a running punchconnect serve.
type server struct {
	cmd  *exec.Cmd
	url  string
	key  string
	done chan struct{}
}

var servingURL = regexp.MustCompile(`url=(http://\S+)`)
var keyLine = regexp.MustCompile(`API key: (pcsk_\S+)`)

var pprofAddr = flag.String("pprof-addr", "", "serve the server's pprof on this address while benchmarking")

func startServer(bin, dir string, extra ...string) *server {
	work, err := os.MkdirTemp(dir, "srv")
	check(err)
	args := append([]string{"--addr", "127.0.0.1:0"}, extra...)
	if *databaseURL != "" {
		args = append(args, "--database-url", *databaseURL)
	}
	s := startServerIn(bin, work, args...)
	if s.key == "" {
		check(fmt.Errorf("no API key printed: the store was not empty"))
	}
	return s
}

// startServerIn starts serve in the work directory work.
func startServerIn(bin, work string, args ...string) *server {
	args = append([]string{"serve"}, args...)
	if *pprofAddr != "" {
		args = append(args, "--pprof-addr", *pprofAddr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = work
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	check(cmd.Start())
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	// The serving line is logged at info; with --log-level warn read the key
	// from stdout and the address from a probe of the log.
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
	case s.url = <-urlCh:
	case <-time.After(30 * time.Second):
		check(fmt.Errorf("server did not start"))
	}
	if m := keyLine.FindStringSubmatch(stdout.String()); m != nil {
		s.key = m[1]
	}
	return s
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	<-s.done
}

// peakRSS reads the server's high-water resident set from /proc.
func (s *server) peakRSS() string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.0f MB", float64(kb)/1024)
		}
	}
	return "n/a"
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
// as fast as the server acknowledges them.
func benchIngest(bin, dir string) []result {
	s := startServer(bin, dir)
	defer s.stop()
	const devices, perDeviceEmployees, batch = 16, 500, 100
	serials := s.setup(devices, devices*perDeviceEmployees)
	base := time.Now().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	var acked atomic.Int64
	var errs atomic.Int64
	deadline := time.Now().Add(*duration)
	const perDevice = 40_000 // 500 employees × 4 punches a day × 20 days offline
	start := time.Now()
	var wg sync.WaitGroup
	for d, sn := range serials {
		wg.Go(func() {
			url := s.url + "/iclock/cdata?SN=" + sn + "&table=ATTLOG&Stamp=1"
			for n := 0; n < perDevice && time.Now().Before(deadline); n += batch {
				var b bytes.Buffer
				for i := range batch {
					k := n + i
					emp := k % perDeviceEmployees
					slot := k / perDeviceEmployees // 4 slots a day
					t := base.Add(time.Duration(slot)*6*time.Hour + time.Duration(emp*7)*time.Second)
					fmt.Fprintf(&b, "%d\t%s\t%d\t1\t0\t0\t0\n", 1000+d*perDeviceEmployees+emp, t.Format("2006-01-02 15:04:05"), slot%2)
				}
				reply, err := post(url, b.Bytes())
				if err != nil {
					errs.Add(1)
					continue
				}
				if reply != "OK: "+strconv.Itoa(batch) {
					errs.Add(1)
					continue
				}
				acked.Add(batch)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	rate := float64(acked.Load()) / el.Seconds()
	return []result{{
		name:   "Backlog ingest (16 devices, 100-line ATTLOG batches, durable)",
		figure: fmt.Sprintf("%.0f punches/s (%d in %.1fs, %d errors)", rate, acked.Load(), el.Seconds(), errs.Load()),
		goal:   "≥ 30,000 punches/s", note: "peak RSS " + s.peakRSS(),
	}}
}

// benchRealtime: many devices each send one punch per request.
func benchRealtime(bin, dir string) []result {
	s := startServer(bin, dir)
	defer s.stop()
	const devices, employees, workers = 200, 5000, 64
	serials := s.setup(devices, employees)
	var acked, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; time.Now().Before(deadline) && k < 50_000; k++ {
				n := w + k*workers // the n-th punch of the run
				sn := serials[n%devices]
				// Real time: each employee punches now and then, on the device at hand.
				line := fmt.Sprintf("%d\t%s\t0\t1\t0\t0\t0\n", 1000+n%employees, time.Now().In(kolkata).Format("2006-01-02 15:04:05"))
				t0 := time.Now()
				reply, err := post(s.url+"/iclock/cdata?SN="+sn+"&table=ATTLOG&Stamp=1", []byte(line))
				if err != nil || reply != "OK: 1" {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	p := func(q float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*q)]
	}
	return []result{{
		name:   "Real-time single-punch requests (200 devices, 64 concurrent)",
		figure: fmt.Sprintf("%.0f req/s (p50 %v, p99 %v, %d errors)", float64(acked.Load())/el.Seconds(), p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), errs.Load()),
		goal:   "≥ 5,000 req/s", note: "peak RSS " + s.peakRSS(),
	}}
}

func write(results []result) {
	host, _ := os.Hostname()
	commit := strings.TrimSpace(output("git", "rev-parse", "--short", "HEAD"))
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s — %s, %d cores (GOMAXPROCS %d), %s, commit %s, store %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), commit, storeName())
	fmt.Fprintln(&b, "| scenario | measured | goal | notes |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- |")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, r.figure, r.goal, r.note)
	}
	fmt.Print(b.String())
	if *out == "" {
		return
	}
	f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	check(err)
	defer f.Close()
	_, err = f.WriteString(b.String())
	check(err)
}

func storeName() string {
	if *databaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

func output(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return string(b)
}
