// Package simulator emulates ZKTeco time clocks speaking Attendance PUSH over
// real HTTP: the handshake, heartbeats, real-time and backlog ATTLOG uploads,
// command results, and the ways real devices misbehave (offline periods,
// lost acknowledgements followed by resends, drifting clocks, no punch-state
// key). `punchconnect simulate`, the end-to-end tests and the benchmarks all
// drive PunchConnect with it.
package simulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Punch is one record in a device's memory.
type Punch struct {
	PIN    string
	At     time.Time // true time of the punch
	Local  string    // what the device clock showed, YYYY-MM-DD HH:MM:SS
	State  int
	Verify int
}

// Line is the record as an ATTLOG line.
func (p Punch) Line() string {
	return fmt.Sprintf("%s\t%s\t%d\t%d\t0\t0\t0", p.PIN, p.Local, p.State, p.Verify)
}

// Command is a command the server sent on a heartbeat.
type Command struct {
	ID   string
	Text string
}

// Device is one emulated time clock. Its exported fields may be changed
// between calls; the methods are safe for concurrent use.
type Device struct {
	Serial   string
	Server   string // base URL, such as http://127.0.0.1:8080
	HTTP     *http.Client
	Location *time.Location // the zone its clock is set to
	// Now is true time; the device clock shows Now + ClockOffset + drift.
	Now          func() time.Time
	ClockOffset  time.Duration
	DriftPerHour time.Duration
	// State255 devices have no punch-state key: every record has state 255.
	State255 bool
	// LostAckRate is the chance that an upload's acknowledgement is lost, so
	// the device sends the same records again.
	LostAckRate float64
	// Reply decides the return code of a command (when nil, the device runs
	// the command and answers as firmware does).
	Reply func(Command) int
	// Silent commands get no answer at all (a device that lost them).
	Silent func(Command) bool
	// AckTwice makes the device report every result twice, as some
	// firmware does after a reconnect.
	AckTwice bool
	// Path suffix: ".aspx" makes it speak like eSSL firmware.
	Suffix string
	// Rand draws in [0, 1); tests make it deterministic.
	Rand func() float64

	mu       sync.Mutex
	made     map[string]bool // distinct records, when KeepLog was called
	started  time.Time
	buffer   []Punch // recorded, not yet acknowledged
	stamp    int
	delay    time.Duration
	timeZone string
	commands []Command
	stats    Stats
	// users is the device's user table: PIN → fields, as commands wrote it.
	users map[string]map[string]string
	// log is every record the device made, which DATA QUERY ATTLOG resends.
	log []Punch
}

// Stats count what a device did.
type Stats struct {
	Punches       int // records made
	Uploaded      int // records acknowledged
	Resent        int // records sent again after a lost acknowledgement
	Uploads       int
	Heartbeats    int
	Commands      int
	Failures      int // requests that failed (the device retries)
	LastUploadErr error
}

// ErrOffline is returned by requests of a device that is offline.
var ErrOffline = errors.New("device offline")

func (d *Device) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// clock is what the device's clock shows at true time t.
func (d *Device) clock(t time.Time) time.Time {
	d.mu.Lock()
	if d.started.IsZero() {
		d.started = t
	}
	drift := time.Duration(float64(d.DriftPerHour) * t.Sub(d.started).Hours())
	d.mu.Unlock()
	loc := d.Location
	if loc == nil {
		loc = time.UTC
	}
	return t.Add(d.ClockOffset + drift).In(loc)
}

func (d *Device) client() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return http.DefaultClient
}

func (d *Device) url(endpoint string, q url.Values) string {
	q.Set("SN", d.Serial)
	return d.Server + "/iclock/" + endpoint + d.Suffix + "?" + q.Encode()
}

// do sends one request the way firmware does: plain text, one request per
// connection, and judges success by the status alone.
func (d *Device) do(ctx context.Context, method, endpoint string, q url.Values, body []byte) (string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.url(endpoint, q), rd)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "iClock Proxy/1.09")
	req.Close = true
	resp, err := d.client().Do(req)
	if err != nil {
		d.fail()
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		d.fail()
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		d.fail()
		return string(data), fmt.Errorf("%s %s: HTTP %d: %s", method, endpoint, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return string(data), nil
}

func (d *Device) fail() {
	d.mu.Lock()
	d.stats.Failures++
	d.mu.Unlock()
}

// Handshake is the first request after boot: it reads the option block
// (Delay, TimeZone) the server answers.
func (d *Device) Handshake(ctx context.Context) (string, error) {
	body, err := d.do(ctx, http.MethodGet, "cdata", url.Values{"options": {"all"}, "pushver": {"2.4.1"}, "language": {"69"}}, nil)
	if err != nil {
		return body, err
	}
	if !strings.HasPrefix(body, "GET OPTION FROM: "+d.Serial) {
		return body, fmt.Errorf("handshake reply does not start with GET OPTION FROM: %q", firstLine(body))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, line := range strings.Split(body, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "Delay":
			if n, err := strconv.Atoi(v); err == nil {
				d.delay = time.Duration(n) * time.Second
			}
		case "TimeZone":
			d.timeZone = v
		}
	}
	return body, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Delay is the poll interval the server set (10 s before a handshake).
func (d *Device) Delay() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.delay == 0 {
		return 10 * time.Second
	}
	return d.delay
}

// TimeZone is the TimeZone option the last handshake gave.
func (d *Device) TimeZone() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.timeZone
}

// Record makes a punch by pin at true time t, kept until an upload is acknowledged.
func (d *Device) Record(pin string, t time.Time, state, verify int) Punch {
	if d.State255 {
		state = 255
	}
	p := Punch{PIN: pin, At: t, Local: d.clock(t).Format("2006-01-02 15:04:05"), State: state, Verify: verify}
	d.mu.Lock()
	d.buffer = append(d.buffer, p)
	d.log = append(d.log, p)
	d.stats.Punches++
	if d.made != nil {
		d.made[p.Line()] = true
	}
	d.mu.Unlock()
	return p
}

// KeepLog makes the device remember the distinct records it makes. Two
// punches by one PIN in the same second with the same state and verify code
// are one record to any server: the log is the same line.
func (d *Device) KeepLog() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.made == nil {
		d.made = map[string]bool{}
	}
}

// Distinct is how many distinct records the device made since KeepLog.
func (d *Device) Distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.made)
}

// Pending is how many records wait for an acknowledgement.
func (d *Device) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.buffer)
}

// Upload sends up to max buffered records (all when max ≤ 0) as one ATTLOG
// POST. On "OK: n" the records are acknowledged — unless the acknowledgement
// is lost, and they stay to be sent again.
func (d *Device) Upload(ctx context.Context, max int) (int, error) {
	d.mu.Lock()
	n := len(d.buffer)
	if max > 0 && n > max {
		n = max
	}
	batch := append([]Punch(nil), d.buffer[:n]...)
	d.stamp++
	stamp := d.stamp
	d.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	var body strings.Builder
	for _, p := range batch {
		body.WriteString(p.Line())
		body.WriteByte('\n')
	}
	reply, err := d.do(ctx, http.MethodPost, "cdata", url.Values{"table": {"ATTLOG"}, "Stamp": {strconv.Itoa(stamp)}}, []byte(body.String()))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Uploads++
	if err != nil {
		d.stats.LastUploadErr = err
		return 0, err
	}
	acked, perr := ParseAck(reply)
	if perr != nil {
		d.stats.LastUploadErr = perr
		return 0, perr
	}
	if acked != n {
		return 0, fmt.Errorf("server acknowledged %d of %d records", acked, n)
	}
	if d.LostAckRate > 0 && d.rand() < d.LostAckRate {
		d.stats.Resent += n
		return 0, nil // the ack never arrived: the same records go again
	}
	d.buffer = d.buffer[n:]
	d.stats.Uploaded += n
	return n, nil
}

func (d *Device) rand() float64 {
	if d.Rand != nil {
		return d.Rand()
	}
	return rand.Float64()
}

// ParseAck reads "OK: n" or "OK:n".
func ParseAck(reply string) (int, error) {
	s := strings.TrimSpace(reply)
	rest, ok := strings.CutPrefix(s, "OK:")
	if !ok {
		return 0, fmt.Errorf("acknowledgement %q is not OK: <n>", s)
	}
	return strconv.Atoi(strings.TrimSpace(rest))
}

// Heartbeat polls for commands (GET getrequest), optionally with INFO, runs
// the commands it gets and reports their results on devicecmd. CHECK makes
// it re-read its options, as firmware does.
func (d *Device) Heartbeat(ctx context.Context, info string) ([]Command, error) {
	q := url.Values{}
	if info != "" {
		q.Set("INFO", info)
	}
	body, err := d.do(ctx, http.MethodGet, "getrequest", q, nil)
	d.mu.Lock()
	d.stats.Heartbeats++
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cmds := ParseCommands(body)
	if len(cmds) == 0 {
		return nil, nil
	}
	var results strings.Builder
	recheck := false
	for _, c := range cmds {
		if d.Silent != nil && d.Silent(c) {
			continue
		}
		code, extra := d.run(c)
		if d.Reply != nil {
			code = d.Reply(c)
		}
		family := strings.ReplaceAll(c.Text, " ", "_")
		if strings.HasPrefix(c.Text, "DATA ") {
			family = "DATA" // devices echo only the family of DATA commands
		}
		if c.Text == "CHECK" && code == 0 {
			recheck = true
		}
		fmt.Fprintf(&results, "ID=%s&Return=%d&CMD=%s\n%s", c.ID, code, family, extra)
	}
	report := results.String()
	if d.AckTwice {
		report += report
	}
	d.mu.Lock()
	d.commands = append(d.commands, cmds...)
	d.stats.Commands += len(cmds)
	d.mu.Unlock()
	if report != "" {
		if _, err := d.do(ctx, http.MethodPost, "devicecmd", url.Values{}, []byte(report)); err != nil {
			return cmds, err
		}
	}
	if recheck {
		if _, err := d.Handshake(ctx); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// run carries out a command as firmware does, returning its return code and
// any key=value lines that follow the result (INFO).
func (d *Device) run(c Command) (int, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	text := c.Text
	switch {
	case strings.HasPrefix(text, "DATA UPDATE USERINFO ") || strings.HasPrefix(text, "DATA UPDATE user "):
		_, rest, _ := strings.Cut(strings.TrimPrefix(text, "DATA UPDATE "), " ")
		fields := fieldsOf(rest)
		pin := fields["PIN"] + fields["Pin"]
		if pin == "" {
			return -1, ""
		}
		if d.users == nil {
			d.users = map[string]map[string]string{}
		}
		u := d.users[pin]
		if u == nil {
			u = map[string]string{}
			d.users[pin] = u
		}
		for k, v := range fields {
			u[k] = v
		}
		return 0, ""
	case strings.HasPrefix(text, "DATA DELETE USERINFO ") || strings.HasPrefix(text, "DATA DELETE user "):
		_, rest, _ := strings.Cut(strings.TrimPrefix(text, "DATA DELETE "), " ")
		fields := fieldsOf(rest)
		pin := fields["PIN"] + fields["Pin"]
		if _, ok := d.users[pin]; !ok {
			return -10, ""
		}
		delete(d.users, pin)
		return 0, ""
	case strings.HasPrefix(text, "DATA QUERY ATTLOG "):
		fields := fieldsOf(strings.TrimPrefix(text, "DATA QUERY ATTLOG "))
		n := 0
		for _, p := range d.log {
			if p.Local >= fields["StartTime"] && p.Local <= fields["EndTime"] {
				d.buffer = append(d.buffer, p) // sent again as an upload
				n++
			}
		}
		if n == 0 {
			return -1, "" // firmware answers -1 for an empty range
		}
		return 0, ""
	case text == "INFO":
		return 0, fmt.Sprintf("UserCount=%d\nFWVersion=Ver 6.60 Sim\nTransactionCount=%d\n", len(d.users), len(d.log))
	case text == "REBOOT", text == "AC_UNLOCK", text == "CHECK", strings.HasPrefix(text, "CONTROL DEVICE "),
		strings.HasPrefix(text, "SET OPTIONS "), strings.HasPrefix(text, "GET OPTIONS "):
		return 0, ""
	}
	return -1002, "" // a command this firmware does not know
}

// fieldsOf reads TAB-separated key=value pairs.
func fieldsOf(s string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, "\t") {
		if k, v, ok := strings.Cut(part, "="); ok {
			out[k] = v
		}
	}
	return out
}

// Users returns the device's user table as commands left it.
func (d *Device) Users() map[string]map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]map[string]string, len(d.users))
	for pin, u := range d.users {
		c := make(map[string]string, len(u))
		for k, v := range u {
			c[k] = v
		}
		out[pin] = c
	}
	return out
}

// ParseCommands reads a getrequest reply: OK, or lines C:<id>:<command>.
func ParseCommands(body string) []Command {
	var out []Command
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "C:")
		if !ok {
			continue
		}
		id, text, ok := strings.Cut(rest, ":")
		if ok {
			out = append(out, Command{ID: id, Text: text})
		}
	}
	return out
}

// Commands lists the commands received so far.
func (d *Device) Commands() []Command {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Command(nil), d.commands...)
}

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}
