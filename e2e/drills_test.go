package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/simulator"
)

// TestDiskFull: the store's disk fills up while devices upload (see
// storeOutageDrill). The disk is filled by lowering the server's file-size
// limit, which makes its writes fail as on a full disk.
func TestDiskFull(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses prlimit")
	}
	// A write that fits in space the files already have still succeeds,
	// as on a real full disk: only growth is refused.
	storeOutageDrill(t, "the disk is full", false, func(p *proc, data string) func() {
		// No file of the server may grow any more.
		pid := p.cmd.Process.Pid
		var size int64
		for _, f := range []string{"punchconnect.db", "punchconnect.db-wal"} {
			if st, err := os.Stat(filepath.Join(data, f)); err == nil {
				size = max(size, st.Size())
			}
		}
		full := unix.Rlimit{Cur: uint64(size), Max: unix.RLIM_INFINITY}
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &full, nil); err != nil {
			t.Skipf("prlimit: %v", err)
		}
		return func() {
			free := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
			if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &free, nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestReadOnlyStore: the store's files stop taking writes while devices
// upload (see storeOutageDrill), as when their file system turns
// read-only. The database and its WAL are made immutable (FS_IMMUTABLE_FL,
// chattr +i), which refuses writes even through the descriptors the server
// already holds; its shared-memory index, which SQLite writes through a
// mapping, is left alone.
func TestReadOnlyStore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses FS_IOC_SETFLAGS")
	}
	storeOutageDrill(t, "the store is read-only", true, func(p *proc, data string) func() {
		files := []string{filepath.Join(data, "punchconnect.db"), filepath.Join(data, "punchconnect.db-wal")}
		for _, f := range files {
			if err := setImmutable(f, true); err != nil {
				t.Skipf("cannot make %s immutable here: %v", f, err)
			}
			t.Cleanup(func() { _ = setImmutable(f, false) }) // or the test's directory cannot be removed
		}
		return func() {
			for _, f := range files {
				if err := setImmutable(f, false); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// fsImmutable is FS_IMMUTABLE_FL of linux/fs.h.
const fsImmutable = 0x10

// setImmutable sets or clears a file's immutable attribute (chattr ±i).
func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutable
	} else {
		flags &^= fsImmutable
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
}

// storeOutageDrill: breakStore makes the SQLite store refuse writes while
// devices upload. Uploads that cannot be stored get an error, so the devices
// keep them and send them again; the server stays up; nothing acknowledged
// is lost; once the repair breakStore returned has run, the server takes
// the devices' resends without a restart. When every write fails, an API
// write meanwhile is refused as unavailable (503, Retry-After), and the same
// request succeeds after the repair.
func storeOutageDrill(t *testing.T, what string, everyWriteFails bool, breakStore func(p *proc, data string) (repair func())) {
	dir := t.TempDir()
	p := serve(t, dir, nil)
	key := p.firstKey()
	api := apitest.New(t, p.URL, key)
	fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{Devices: 2, Employees: 50}}
	ctx := context.Background()
	if err := fleet.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24 * time.Hour)
	n := 0
	record := func(count int) {
		for range count {
			for _, d := range fleet.Devices {
				d.Record(fleet.Badges[n%len(fleet.Badges)], base.Add(time.Duration(n)*time.Minute), 0, 1)
			}
			n++
		}
	}
	for _, d := range fleet.Devices {
		d.KeepLog()
	}
	record(100)
	for _, d := range fleet.Devices {
		if _, err := d.Upload(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	repair := breakStore(p, filepath.Join(dir, "data"))
	record(3000)
	refused := 0
	for _, d := range fleet.Devices {
		for range 20 {
			if _, err := d.Upload(ctx, 100); err != nil {
				refused++
			}
		}
	}
	if refused == 0 {
		t.Fatalf("every upload was accepted while %s; the drill proves nothing", what)
	}
	if resp, err := http.Get(p.URL + "/healthz"); err != nil {
		t.Fatalf("the server died while %s: %v", what, err)
	} else {
		resp.Body.Close()
	}
	retryAPIWrite := func() {}
	if everyWriteFails {
		retryAPIWrite = apiWriteRefused(t, api, what)
	}
	// The store takes writes again: the devices' resends are taken, without
	// a restart.
	repair()
	made := allStoredOnce(t, api, fleet, "after the store came back")
	retryAPIWrite()
	t.Logf("%d uploads refused while %s; all %d records stored once afterwards", refused, what, made)
	p.signal(syscall.SIGTERM)
}

// apiWriteRefused: an API write made while the database takes no writes is
// answered as a client should see it — 503 service_unavailable with
// Retry-After, not an internal error. The returned function, called once
// the database takes writes again, sends the same request with the same
// Idempotency-Key and expects it to succeed.
func apiWriteRefused(t *testing.T, api *apitest.Client, what string) (retry func()) {
	t.Helper()
	employee := map[string]any{"badge_number": "88001"}
	key := apitest.IdempotencyKey("during-outage")
	r := api.Do("POST", "/v1/employees", employee, key)
	r.ExpectError(t, 503, "service_unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 while %s has no Retry-After", what)
	}
	return func() {
		t.Helper()
		api.Do("POST", "/v1/employees", employee, key).Expect(t, 201)
	}
}

func allStoredOnce(t *testing.T, api *apitest.Client, fleet *simulator.Fleet, when string) int {
	t.Helper()
	made := 0
	for _, d := range fleet.Devices {
		for d.Pending() > 0 {
			if _, err := d.Upload(context.Background(), 100); err != nil {
				t.Fatalf("%s: %v", when, err)
			}
		}
		made += d.Distinct()
	}
	stored := total(t, api, "/v1/attendance?per_page=1") + total(t, api, "/v1/attendance/rejected?per_page=1")
	if stored != made {
		t.Fatalf("%s: %d records made, %d stored", when, made, stored)
	}
	return made
}

// privatePostgres starts a PostgreSQL cluster of its own (the drill
// restarts it), with .ci/start-postgres, and returns its URL and directory.
func privatePostgres(t *testing.T) (string, string) {
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("PUNCHCONNECT_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("this drill needs PostgreSQL 15 binaries and root: %v", err)
		}
		t.Skip("needs PostgreSQL 15 binaries and root")
	}
	out, err := exec.Command("../.ci/start-postgres").Output()
	if err != nil {
		t.Fatalf("start-postgres: %v", err)
	}
	var url, dir string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "export PUNCHCONNECT_TEST_DATABASE_URL="); ok {
			url = strings.Trim(v, "'")
		}
		if v, ok := strings.CutPrefix(line, "export PUNCHCONNECT_TEST_PGDIR="); ok {
			dir = strings.Trim(v, "'")
		}
	}
	t.Cleanup(func() { _ = exec.Command("../.ci/stop-postgres", dir).Run() })
	return url, dir
}

func pgctl(t *testing.T, dir string, args ...string) {
	t.Helper()
	full := append([]string{"-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", dir + "/data", "-w", "-t", "60"}, args...)
	// The server's output goes to its log (-l), so pg_ctl's own ends when it does.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "runuser", full...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

// psql runs each statement on its own, in one session.
func psql(t *testing.T, url string, sqls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-q", "-v", "ON_ERROR_STOP=1", url}
	for _, s := range sqls {
		args = append(args, "-c", s)
	}
	if out, err := exec.CommandContext(ctx, "/usr/lib/postgresql/15/bin/psql", args...).CombinedOutput(); err != nil {
		t.Fatalf("psql %q: %v\n%s", sqls, err, out)
	}
}

// TestPostgresRestartAndReadOnly: devices keep uploading while PostgreSQL
// restarts, and while it is read-only (a fail-over to a replica, say): the
// server answers errors, the devices resend, the server reconnects on its
// own, and every record is stored once — nothing acknowledged lost.
func TestPostgresRestartAndReadOnly(t *testing.T) {
	url, dir := privatePostgres(t)
	p := serve(t, t.TempDir(), []string{"PUNCHCONNECT_DATABASE_URL=" + url}, "--device-poll-interval", "1s")
	key := p.firstKey()
	api := apitest.New(t, p.URL, key)
	fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{Devices: 4, Employees: 40, PunchesPerMinute: 300, BatchSize: 5}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := fleet.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range fleet.Devices {
		d.KeepLog()
	}
	var wg sync.WaitGroup
	wg.Go(func() { fleet.Run(ctx) })

	time.Sleep(2 * time.Second)
	pgctl(t, dir, "restart", "-m", "fast", "-l", dir+"/server.log")
	time.Sleep(2 * time.Second)
	beforeReadOnly := fleet.Totals().Failures
	psql(t, url, "ALTER SYSTEM SET default_transaction_read_only = on")
	psql(t, url, "SELECT pg_reload_conf()")
	time.Sleep(2 * time.Second)
	failuresReadOnly := fleet.Totals().Failures - beforeReadOnly
	retryAPIWrite := apiWriteRefused(t, api, "the database is read-only")
	// psql's own session must not be read-only to undo it.
	psql(t, url, "SET default_transaction_read_only = off", "ALTER SYSTEM RESET default_transaction_read_only")
	psql(t, url, "SELECT pg_reload_conf()")
	time.Sleep(2 * time.Second)
	retryAPIWrite()
	cancel()
	wg.Wait()
	made := allStoredOnce(t, api, fleet, "after the drills")
	if failuresReadOnly == 0 {
		t.Fatal("no request failed while the database was read-only; the drill proves nothing")
	}
	t.Logf("%d requests failed during the drills; all %d records stored once", fleet.Totals().Failures, made)
	p.signal(syscall.SIGTERM)
}

// TestThousandDevicesAtOnce: a thousand devices come back at the same
// moment (a site's power returns, say) — each handshakes and then
// heartbeats with its INFO, all at once, one connection per request as
// firmware does. Every request is answered, and every device is online.
func TestThousandDevicesAtOnce(t *testing.T) {
	const devices = 1000
	eachBackend(t, func(t *testing.T, env []string) {
		p := serve(t, t.TempDir(), env)
		key := p.firstKey()
		api := apitest.New(t, p.URL, key)
		client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}}
		fleet := &simulator.Fleet{Server: p.URL, APIKey: key, HTTP: client, Plan: simulator.Plan{Devices: devices, Employees: 10}}
		ctx := context.Background()
		if err := fleet.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		at := func(what string, fn func(d *simulator.Device) error) {
			start := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var errs []error
			var slowest time.Duration
			for _, d := range fleet.Devices {
				wg.Go(func() {
					<-start
					began := time.Now()
					err := fn(d)
					mu.Lock()
					defer mu.Unlock()
					slowest = max(slowest, time.Since(began))
					if err != nil {
						errs = append(errs, err)
					}
				})
			}
			began := time.Now()
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%s: %d of %d devices failed, first: %v", what, len(errs), devices, errs[0])
			}
			t.Logf("%s: %d devices at once answered in %v (slowest device %v)", what, devices, time.Since(began).Round(time.Millisecond), slowest.Round(time.Millisecond))
		}
		at("handshake", func(d *simulator.Device) error { _, err := d.Handshake(ctx); return err })
		at("heartbeat", func(d *simulator.Device) error {
			_, err := d.Heartbeat(ctx, "Ver 8.0.4.2-20191010,12,1,4250,192.168.1.20,10,12,1,0,111")
			return err
		})
		if online := total(t, api, "/v1/devices?status=online&per_page=1"); online != devices {
			t.Fatalf("%d of %d devices online after their heartbeats", online, devices)
		}
		p.signal(syscall.SIGTERM)
	})
}

// TestBackupWhileServing: `punchconnect backup` copies the SQLite store
// while devices upload; the copy is consistent (every punch it holds has
// its event, nothing half-written) and serves as it is.
func TestBackupWhileServing(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil)
	key := p.firstKey()
	fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{Devices: 4, Employees: 40, PunchesPerMinute: 6000, BatchSize: 20}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := fleet.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { fleet.Run(ctx) })
	live := apitest.New(t, p.URL, key)
	waitUntil(t, "uploads under way", 60*time.Second, func() bool { return total(t, live, "/v1/attendance?per_page=1") >= 100 })
	out, errOut, code := run(t, dir, nil, "backup", "--to", "copy.db")
	cancel()
	wg.Wait()
	if code != 0 || !strings.Contains(out, "Backed up to copy.db") {
		t.Fatalf("backup = %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := run(t, dir, nil, "backup", "--to", "copy.db"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("a second backup over the first = %d %s", code, errOut)
	}
	p.signal(syscall.SIGTERM)

	copyDir := t.TempDir()
	c := serve(t, copyDir, nil, "--database-url", "sqlite://"+filepath.Join(dir, "copy.db"))
	api := apitest.New(t, c.URL, key) // the same account and key
	punches := total(t, api, "/v1/attendance?per_page=1")
	events := total(t, api, "/v1/events?type=attendance.punch&per_page=1")
	if punches == 0 || punches != events {
		t.Fatalf("the copy holds %d punches and %d punch events", punches, events)
	}
	t.Logf("backup taken mid-upload holds %d punches, each with its event", punches)
	c.signal(syscall.SIGTERM)
}
