// Package adms speaks ZKTeco's PUSH protocol ("ADMS", iclock): Attendance
// PUSH 2.x and Security PUSH 3.x, with the eSSL dialect. It parses what
// devices send and formats what they expect back, tolerant of the ways real
// firmware departs from the documents (see shared/reference/zkteco-push.md),
// and serves /iclock/* on top of the ingest pipeline.
package adms

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxPINLength is the longest PIN a record may carry (ZKTeco PINs are at
// most 24 characters).
const MaxPINLength = 24

// DeviceTimeLayout is how devices write times: local wall clock, no zone.
const DeviceTimeLayout = "2006-01-02 15:04:05"

// Query is a device request's query string. Firmware sends keys in mixed
// case (SN, pushver, PushOptionsFlag), so keys are matched case-insensitively.
type Query map[string]string

// ParseQuery reads a raw query string leniently: the first value of each key
// wins, and a value that does not unescape is kept as sent.
func ParseQuery(raw string) Query {
	q := Query{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, seen := q[k]; !seen && k != "" {
			q[k] = v
		}
	}
	return q
}

// Get returns the value of key, whatever its case in the request.
func (q Query) Get(key string) string { return q[strings.ToLower(key)] }

// Has reports whether key was sent.
func (q Query) Has(key string) bool {
	_, ok := q[strings.ToLower(key)]
	return ok
}

// lines splits a body into lines, dropping CR and blank lines.
func lines(body []byte) []string {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	var out []string
	for line := range strings.SplitSeq(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, line)
	}
	return out
}

// Record is one attendance record as a device reported it, before
// normalization. A record that cannot be read has Err set and keeps its Raw
// line.
type Record struct {
	PIN      string
	Time     string    // the device's local wall time, as sent
	Wall     time.Time // Time parsed, in UTC as a plain container; zero when Err is set
	State    *int      // punch-state key
	Verify   string    // verify code, raw (a number, or a Security PUSH bitmask)
	WorkCode string
	Index    string // Security PUSH record index
	Raw      string
	Err      string
}

// parseWall reads a device time. Zero dates (0000-00-00) and impossible
// ones fail.
func parseWall(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{DeviceTimeLayout, "2006-01-02T15:04:05", "2006/01/02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseState(s string) *int {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1_000_000 {
		return nil
	}
	return &n
}

// checkPIN validates a PIN, returning why it is unusable ("" when fine).
func checkPIN(pin string) string {
	switch {
	case pin == "":
		return "no PIN"
	case len(pin) > MaxPINLength:
		return "PIN longer than 24 characters"
	case strings.ContainsAny(pin, " \t\r\n\x00"):
		return "PIN contains spaces or control characters"
	}
	return ""
}

// ParseATTLOG reads an ATTLOG upload: one record per line, TAB-separated
// positional fields — PIN, time, state, verify, workcode, then reserved and
// model-specific fields (5 to 16 and more), which are kept in Raw only.
func ParseATTLOG(body []byte) []Record {
	var out []Record
	for _, line := range lines(body) {
		r := Record{Raw: line}
		f := strings.Split(line, "\t")
		r.PIN = strings.TrimSpace(f[0])
		if len(f) < 2 {
			r.Err = "fewer than 2 TAB-separated fields"
			out = append(out, r)
			continue
		}
		r.Time = strings.TrimSpace(f[1])
		if len(f) > 2 {
			r.State = parseState(f[2])
		}
		if len(f) > 3 {
			r.Verify = strings.TrimSpace(f[3])
		}
		if len(f) > 4 {
			r.WorkCode = strings.TrimSpace(f[4])
		}
		r.finish()
		out = append(out, r)
	}
	return out
}

// finish validates the PIN and the time.
func (r *Record) finish() {
	if r.Err != "" {
		return
	}
	if why := checkPIN(r.PIN); why != "" {
		r.Err = why
		return
	}
	wall, ok := parseWall(r.Time)
	if !ok {
		r.Err = "time " + strconv.Quote(r.Time) + " is not YYYY-MM-DD HH:MM:SS"
		return
	}
	r.Wall = wall
}

// keyed splits "k=v<TAB>k=v…" into lower-case keys. Values keep their
// spaces; a field without '=' is skipped.
func keyed(s string) map[string]string {
	m := map[string]string{}
	for field := range strings.SplitSeq(s, "\t") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, seen := m[k]; !seen {
			m[k] = v
		}
	}
	return m
}

// RtEvent is a Security PUSH real-time event (table=rtlog). Punch reports
// whether it is an employee's attendance (a pin, and an event in a "normal"
// band); other events (door sensor, denied access, alarms) are not punches.
type RtEvent struct {
	Record
	Event      int
	InOut      *int
	CardNo     string
	IsPunch    bool
	EventBand  string // normal, denied, alarm, unknown
	NotPunchBy string // why it is not a punch
}

// ParseRtlog reads table=rtlog: keyed, TAB-separated lines
// (time=…<TAB>pin=…<TAB>event=…<TAB>inoutstatus=…<TAB>verifytype=…<TAB>index=…).
func ParseRtlog(body []byte) []RtEvent {
	var out []RtEvent
	for _, line := range lines(body) {
		m := keyed(line)
		e := RtEvent{Record: Record{Raw: line, PIN: strings.TrimSpace(m["pin"]), Time: strings.TrimSpace(m["time"]),
			Verify: strings.TrimSpace(m["verifytype"]), Index: strings.TrimSpace(m["index"])}, CardNo: m["cardno"]}
		if s := parseState(m["inoutstatus"]); s != nil {
			e.InOut = s
			e.State = s
		}
		ev, err := strconv.Atoi(strings.TrimSpace(m["event"]))
		switch {
		case len(m) == 0:
			e.Err = "no key=value fields"
		case err != nil && m["event"] != "":
			e.Err = "event " + strconv.Quote(m["event"]) + " is not a number"
		}
		e.Event = ev
		e.EventBand = eventBand(ev)
		e.finish()
		switch {
		case e.Err != "":
			e.IsPunch = true // malformed: held back with its reason, like any punch
		case e.PIN == "0":
			e.NotPunchBy = "device event (pin=0)"
		case e.EventBand != "normal":
			e.NotPunchBy = "event " + strconv.Itoa(ev) + " is " + e.EventBand
		default:
			e.IsPunch = true
		}
		out = append(out, e)
	}
	return out
}

// eventBand classifies a Security PUSH event code (the protocol's appendix 2).
func eventBand(ev int) string {
	switch {
	case ev >= 0 && ev <= 19, ev >= 200 && ev <= 253, ev >= 4000 && ev <= 4999:
		return "normal"
	case ev >= 20 && ev <= 99, ev >= 5000 && ev <= 5999:
		return "denied"
	case ev >= 100 && ev <= 199, ev >= 6000 && ev <= 6999:
		return "alarm"
	}
	return "unknown"
}

// Line is one record of an OPERLOG upload or a tabledata table: a tag (USER,
// FP, FACE, BIODATA, OPLOG, user, transaction, …) and its fields.
type Line struct {
	Tag        string
	Fields     map[string]string // keyed fields, lower-case keys
	Positional []string          // OPLOG's positional fields
	Raw        string
}

// ParseOPERLOG reads an OPERLOG upload: each line is a tag, a space, then
// TAB-separated fields — keyed (USER PIN=…<TAB>Name=…) or, for OPLOG,
// positional (OPLOG 4<TAB>14<TAB>2015-07-30 10:22:34<TAB>…).
func ParseOPERLOG(body []byte) []Line { return parseTagged(body) }

// ParseTableData reads a Security PUSH tabledata upload ("user uid=1<TAB>pin=1<TAB>…").
func ParseTableData(body []byte) []Line { return parseTagged(body) }

func parseTagged(body []byte) []Line {
	var out []Line
	for _, raw := range lines(body) {
		tag, rest, _ := strings.Cut(strings.TrimLeft(raw, " "), " ")
		l := Line{Tag: tag, Raw: raw}
		if strings.EqualFold(tag, "OPLOG") {
			l.Positional = strings.Split(rest, "\t")
		} else {
			l.Fields = keyed(rest)
		}
		out = append(out, l)
	}
	return out
}

// CommandResult is one line of a devicecmd report: the command ID we sent,
// its return code and family, and any key=value lines that followed (INFO
// and GetFile answer that way).
type CommandResult struct {
	ID        string
	Return    int
	ReturnRaw string
	Cmd       string
	Extra     map[string]string
}

// ParseDeviceCmd reads a devicecmd body: one or more results joined by LF,
// each "ID=…&Return=…&CMD=…" (some firmware adds &SN=), possibly followed
// by key=value lines, or written one key per line.
func ParseDeviceCmd(body []byte) []CommandResult {
	var out []CommandResult
	set := func(k, v string) {
		k = strings.TrimSpace(k)
		var cur *CommandResult
		if len(out) > 0 {
			cur = &out[len(out)-1]
		}
		switch lk := strings.ToLower(k); {
		case lk == "id":
			out = append(out, CommandResult{ID: strings.TrimSpace(v), Extra: map[string]string{}})
		case cur == nil:
		case lk == "return" && cur.ReturnRaw == "":
			cur.ReturnRaw = strings.TrimSpace(v)
			cur.Return, _ = strconv.Atoi(cur.ReturnRaw)
		case lk == "cmd" && cur.Cmd == "":
			cur.Cmd = strings.TrimSpace(v)
		default:
			cur.Extra[k] = v
		}
	}
	for _, line := range lines(body) {
		if strings.HasPrefix(strings.ToUpper(line), "ID=") && strings.Contains(line, "&") {
			for part := range strings.SplitSeq(line, "&") {
				k, v, _ := strings.Cut(part, "=")
				set(k, v)
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			set(k, v)
		}
	}
	// A result without an ID cannot be matched to anything.
	kept := out[:0]
	for _, r := range out {
		if r.ID != "" {
			kept = append(kept, r)
		}
	}
	return kept
}

// Info is what a heartbeat's INFO= parameter says: firmware, counts, address.
type Info struct {
	Firmware     string
	Users        *int
	Fingerprints *int
	Logs         *int
	IP           string
	Faces        *int
}

// ParseInfo reads INFO=<fw>,<users>,<fingerprints>,<attlogs>,<ip>,<fp alg>,<face alg>,<faces to enrol>,<faces>,<features>.
func ParseInfo(s string) (Info, bool) {
	f := strings.Split(s, ",")
	if len(f) < 4 {
		return Info{}, false
	}
	num := func(i int) *int {
		if i >= len(f) {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(f[i]))
		if err != nil || n < 0 {
			return nil
		}
		return &n
	}
	info := Info{Firmware: strings.TrimSpace(f[0]), Users: num(1), Fingerprints: num(2), Logs: num(3), Faces: num(8)}
	if len(f) > 4 {
		info.IP = strings.TrimSpace(f[4])
	}
	return info, true
}

// ParseOptions reads "k=v,k=v,…" (table=options pushes, registry bodies).
// Values may contain commas ("~OEMVendor=ZKTECO CO., LTD."), so a comma
// splits only where a new key= follows.
func ParseOptions(body []byte) map[string]string {
	s := strings.TrimSpace(string(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))))
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", ",")
	out := map[string]string{}
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && startsKey(s[i+1:]) {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.TrimPrefix(strings.TrimSpace(k), "~")
		if k != "" {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// startsKey reports whether s begins with "~?Name=".
func startsKey(s string) bool {
	s = strings.TrimLeft(s, " ")
	s = strings.TrimPrefix(s, "~")
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_' || s[i] == '.') {
		i++
	}
	return i > 0 && i < len(s) && s[i] == '='
}
