// Package e2e drives the real punchconnect binary: built once, started as a
// process, spoken to over loopback HTTP, stopped with signals or kill -9.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "punchconnect-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "punchconnect")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/punchconnect")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build punchconnect:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running punchconnect serve.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingURL = regexp.MustCompile(`msg=serving url=(\S+)`)

// serve starts `punchconnect serve` in dir with extra args and env, and waits
// until it listens.
func serve(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.stdout
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.stderr.String())
		}
	})
	select {
	case p.URL = <-found:
	case err := <-p.done:
		t.Fatalf("serve exited before listening: %v\n%s", err, p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", p.stderr.String())
	}
	return p
}

// signal sends sig and waits for the process to exit, returning its exit code.
func (p *proc) signal(sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("no exit after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

var apiKey = regexp.MustCompile(`API key: (pcsk_\S+)`)

// firstKey is the key serve printed on an empty store.
func (p *proc) firstKey() string {
	p.t.Helper()
	m := apiKey.FindStringSubmatch(p.stdout.String())
	if m == nil {
		p.t.Fatalf("serve printed no API key:\n%s", p.stdout.String())
	}
	return m[1]
}

// run executes the binary to completion.
func run(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// eachBackend runs fn per store, with the environment that points serve at
// a fresh database of it: SQLite with zero configuration (./data in the work
// directory), and PostgreSQL when configured.
func eachBackend(t *testing.T, fn func(t *testing.T, env []string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, nil) })
	if pg, ok := storetest.PostgresBackend(t); ok {
		t.Run("postgres", func(t *testing.T) { fn(t, []string{"PUNCHCONNECT_DATABASE_URL=" + pg.NewURL(t)}) })
	}
}

// TestNewUser walks the README: serve with no configuration prints a key;
// a device and employees are made with it; another account is made beside
// the running server; a restart prints no new key; SIGTERM stops cleanly.
func TestNewUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		dir := t.TempDir()
		p := serve(t, dir, env)
		key := p.firstKey()
		api := apitest.New(t, p.URL, key)

		dev := api.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045", "timezone": "Europe/Paris"}).Expect(t, 201).Data(t)
		api.Do("POST", "/v1/employees/batch", map[string]any{"employees": []any{
			map[string]any{"badge_number": "1042", "name": "Sarah Chen"},
			map[string]any{"badge_number": "1043", "name": "James Okoro"},
		}}).Expect(t, 200)
		r := api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1044"}, apitest.IdempotencyKey("k1")).Expect(t, 201)
		again := api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1044"}, apitest.IdempotencyKey("k1")).Expect(t, 201)
		if !bytes.Equal(r.Body, again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("retry with the same Idempotency-Key was not replayed")
		}

		for path, want := range map[string]string{
			"/healthz": `"status":"ok"`,
			"/metrics": `go_sql_open_connections{db_name=`,
		} {
			resp, err := http.Get(p.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Fatalf("GET %s = %d, lacks %s", path, resp.StatusCode, want)
			}
		}

		out, errOut, code := run(t, dir, env, "accounts", "create", "--name", "Second", "--email", "ops@second.example", "--json")
		if code != 0 {
			t.Fatalf("accounts create: %d %s", code, errOut)
		}
		var created struct {
			AccountID string `json:"account_id"`
			APIKey    string `json:"api_key"`
		}
		if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.AccountID, "acct_") {
			t.Fatalf("accounts create --json printed %q", out)
		}
		second := api.WithKey(created.APIKey)
		second.Do("GET", "/v1/devices/"+dev["id"].(string), nil).ExpectError(t, 404, "resource_not_found")
		second.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045"}).ExpectError(t, 409, "serial_number_taken")

		if code := p.signal(syscall.SIGTERM); code != 0 {
			t.Fatalf("SIGTERM exit code %d", code)
		}
		if !strings.Contains(p.stderr.String(), "msg=stopped") {
			t.Fatalf("no clean stop:\n%s", p.stderr.String())
		}

		p2 := serve(t, dir, env)
		if strings.Contains(p2.stdout.String(), "API key") {
			t.Fatal("a restart on a store with accounts printed a new key")
		}
		api2 := apitest.New(t, p2.URL, key)
		api2.Do("GET", "/v1/devices/"+dev["id"].(string), nil).Expect(t, 200)
		p2.signal(syscall.SIGINT)
	})
}

// TestAcknowledgedWritesSurviveKill9: every write the API acknowledged is
// there after the process is killed without warning.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		dir := t.TempDir()
		p := serve(t, dir, env)
		api := apitest.New(t, p.URL, p.firstKey())
		const n = 40
		for i := range n {
			api.Do("POST", "/v1/employees", map[string]any{"badge_number": fmt.Sprintf("%d", 1000+i)}).Expect(t, 201)
		}
		p.signal(syscall.SIGKILL)

		p2 := serve(t, dir, env)
		var list struct {
			Pagination struct {
				Total int `json:"total"`
			} `json:"pagination"`
		}
		apitest.New(t, p2.URL, api.Key).Do("GET", "/v1/employees", nil).Expect(t, 200).JSON(t, &list)
		if list.Pagination.Total != n {
			t.Fatalf("%d employees after kill -9, %d were acknowledged", list.Pagination.Total, n)
		}
		p2.signal(syscall.SIGTERM)
	})
}

// TestShutdownNeverHalfWrites: a 5,000-employee batch in flight when SIGTERM
// arrives is either written whole (and answered) or not at all.
func TestShutdownNeverHalfWrites(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil)
	key := p.firstKey()
	api := apitest.New(t, p.URL, key)
	items := make([]map[string]any, 5000)
	for i := range items {
		items[i] = map[string]any{"badge_number": fmt.Sprintf("%05d", i), "name": fmt.Sprintf("Employee %d", i)}
	}
	// Signal once the request is on the wire, not before: the client first
	// validates it against the OpenAPI document.
	sending := make(chan struct{})
	api.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		close(sending)
		return http.DefaultTransport.RoundTrip(r)
	})}
	status := make(chan int, 1)
	go func() {
		r, err := api.Try("POST", "/v1/employees/batch", map[string]any{"employees": items})
		if err != nil {
			status <- 0 // refused: the server had stopped accepting
			return
		}
		status <- r.Status
	}()
	<-sending
	time.Sleep(5 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	got := <-status
	<-p.done

	p2 := serve(t, dir, nil)
	var list struct {
		Pagination struct {
			Total int `json:"total"`
		} `json:"pagination"`
	}
	apitest.New(t, p2.URL, key).Do("GET", "/v1/employees?per_page=1", nil).Expect(t, 200).JSON(t, &list)
	switch {
	case got == 200 && list.Pagination.Total != 5000:
		t.Fatalf("batch answered 200 but %d of 5000 employees are stored", list.Pagination.Total)
	case list.Pagination.Total != 0 && list.Pagination.Total != 5000:
		t.Fatalf("half-written batch: %d of 5000 employees stored", list.Pagination.Total)
	}
	t.Logf("batch status %d, %d employees stored", got, list.Pagination.Total)
	p2.signal(syscall.SIGTERM)
}

// TestNodesStartingTogether: several nodes on one empty PostgreSQL database
// migrate once and make exactly one first account.
func TestNodesStartingTogether(t *testing.T) {
	pg, ok := storetest.PostgresBackend(t)
	if !ok {
		t.Skip("needs PostgreSQL (" + storetest.PostgresURLEnv + ")")
	}
	env := []string{"PUNCHCONNECT_DATABASE_URL=" + pg.NewURL(t)}
	var wg sync.WaitGroup
	procs := make([]*proc, 3)
	for i := range procs {
		wg.Go(func() { procs[i] = serve(t, t.TempDir(), env) })
	}
	wg.Wait()
	keys := 0
	for _, p := range procs {
		if strings.Contains(p.stdout.String(), "API key") {
			keys++
		}
	}
	if keys != 1 {
		t.Fatalf("%d nodes printed a first API key, want exactly 1", keys)
	}
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	out, _, code := run(t, dir, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "punchconnect ") {
		t.Fatalf("version: %d %q", code, out)
	}
	out, _, code = run(t, dir, nil, "migrate", "--database-url", "sqlite://"+filepath.Join(dir, "m.db"))
	if code != 0 || !regexp.MustCompile(`up to date \([1-9][0-9]* migration\(s\) applied now\)`).MatchString(out) {
		t.Fatalf("migrate: %d %q", code, out)
	}
	out, _, code = run(t, dir, nil, "migrate", "--database-url", "sqlite://"+filepath.Join(dir, "m.db"))
	if code != 0 || !strings.Contains(out, "(0 migration(s) applied now)") {
		t.Fatalf("second migrate: %d %q", code, out)
	}
	// Environment twins.
	out, _, code = run(t, dir, []string{"PUNCHCONNECT_DATABASE_URL=sqlite://" + filepath.Join(dir, "env.db")}, "migrate")
	if code != 0 || !strings.Contains(out, "applied now") {
		t.Fatalf("migrate from env: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "env.db")); err != nil {
		t.Fatalf("PUNCHCONNECT_DATABASE_URL was not used: %v", err)
	}
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, nil, 2, "unknown command"},
		{[]string{"serve", "--no-such-flag"}, nil, 2, "no-such-flag"},
		{[]string{"serve", "--log-format", "xml"}, nil, 1, "log-format"},
		{[]string{"serve"}, []string{"PUNCHCONNECT_RATE_LIMIT_PER_DEVICE=lots"}, 1, "PUNCHCONNECT_RATE_LIMIT_PER_DEVICE"},
		{[]string{"accounts", "create", "--name", "X"}, nil, 1, "--email"},
		{[]string{"accounts", "create", "--email", "a@b.example"}, nil, 1, "--name"},
		{[]string{"serve", "--database-url", "mysql://x"}, nil, 1, "sqlite://PATH or postgres://"},
	} {
		_, errOut, code := run(t, dir, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	_, errOut, code := run(t, dir, nil, "serve", "--help")
	if code != 0 || !strings.Contains(errOut, "[PUNCHCONNECT_DATABASE_URL]") {
		t.Fatalf("serve --help: %d %q", code, errOut)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
