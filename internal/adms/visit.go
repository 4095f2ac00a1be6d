package adms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/ingest"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Clock-offset estimation: a real-time upload (a few records from a device
// that polled recently) shows the device clock against ours. The offset is
// the median of the last clockSamples such readings.
const (
	clockSamples     = 5
	realtimeMaxLines = 3
	maxClockSample   = 24 * time.Hour // beyond this it is a reset clock, not drift
	backlogAge       = 5 * time.Minute
	tzCheckEvery     = 10 * time.Minute
	// completenessMargin covers a real-time upload sent just after a poll
	// for a punch made just before it.
	completenessMargin = 2 * time.Second
	logWarnPercent     = 90
	logRearmPercent    = 80
	chineseSimplified  = "83"
	chineseTraditional = "84"
)

// visit is one request of a registered device, handled in one transaction.
type visit struct {
	g      *Gateway
	tx     *store.Tx
	dev    attendance.Device
	acct   attendance.Account
	req    request
	events []attendance.Event
	replay bool // processing a held upload: no contact, no clock samples
}

func (g *Gateway) newVisit(tx *store.Tx, dev attendance.Device, acct attendance.Account, req request) *visit {
	v := &visit{g: g, tx: tx, dev: dev, acct: acct, req: req}
	v.contact()
	return v
}

// contact records that the device reached us: last seen, address, and the
// online transition (a device.status event) when it was not online.
func (v *visit) contact() {
	d := &v.dev
	d.LastSeenAt = v.req.at
	d.IPAddress = v.req.ip
	if d.Status != attendance.DeviceStatusOnline {
		prev := d.Status
		d.Status, d.OnlineSince = attendance.DeviceStatusOnline, v.req.at
		v.events = append(v.events, event.DeviceStatus(*d, prev, v.req.at))
	}
}

// finish stores what the visit learned and the events it raised.
func (v *visit) finish(ctx context.Context) error {
	v.checkLogCapacity()
	if err := v.tx.SaveDeviceState(ctx, &v.dev); err != nil {
		return err
	}
	return v.tx.InsertEvents(ctx, v.events)
}

// serve dispatches on the endpoint.
func (v *visit) serve(ctx context.Context) (reply, error) {
	req := v.req
	switch req.endpoint {
	case "cdata":
		if req.method == http.MethodGet {
			return v.cdataGet(), nil
		}
		return v.upload(ctx)
	case "querydata", "fdata":
		if req.method == http.MethodPost {
			return v.upload(ctx)
		}
	case "getrequest":
		return v.heartbeat(ctx)
	case "devicecmd":
		if err := v.commandResults(ctx, ParseDeviceCmd(req.body)); err != nil {
			return reply{}, err
		}
	case "registry":
		v.dev.Protocol = "security"
		v.learnOptions(ParseOptions(req.body))
		return ok("RegistryCode=" + v.registryCode() + "\n"), nil
	case "push":
		v.dev.Protocol = "security"
		return ok(SecurityOptions(v.registryCode(), newRegistryCode(), v.options())), nil
	case "rtdata":
		if strings.EqualFold(req.query.Get("type"), "time") {
			return ok(v.securityTime()), nil
		}
	}
	return ok("OK"), nil
}

// cdataGet answers the handshake (options=all) and the time request.
func (v *visit) cdataGet() reply {
	q := v.req.query
	switch {
	case q.Has("options"):
		v.dev.PushVersion = q.Get("pushver")
		if lang := q.Get("language"); lang != "" {
			v.dev.Language = lang
		}
		if strings.EqualFold(q.Get("DeviceType"), "acc") {
			v.dev.Protocol = "security"
			return ok(SecurityOptions(v.registryCode(), newRegistryCode(), v.options()))
		}
		v.dev.Protocol = "attendance"
		return ok(AttendanceOptions(v.dev.SerialNumber, v.options()))
	case strings.EqualFold(q.Get("type"), "time"):
		loc := v.location()
		return ok("Time=" + v.req.at.In(loc).Format("2006-01-02T15:04:05-07:00") + "\n")
	}
	return ok("OK")
}

// options is this device's option block, with its TimeZone, which is
// recorded: a later change of offset (DST, or a new zone) makes the device
// re-read it.
func (v *visit) options() OptionsConfig {
	c := v.g.options(&v.dev)
	offset := v.offsetNow()
	c.TimeZone = TimeZoneOption(offset, v.dev.TimezoneFormat)
	minutes := offset / 60
	v.dev.TZOffsetSent = &minutes
	v.dev.TZCheckAt = time.Time{}
	return c
}

func (v *visit) location() *time.Location {
	loc, err := attendance.Location(v.dev.Timezone)
	if err != nil {
		return time.UTC // a stored zone is always valid; UTC keeps a broken row usable
	}
	return loc
}

// offsetNow is the device zone's UTC offset now, in seconds.
func (v *visit) offsetNow() int {
	_, off := v.req.at.In(v.location()).Zone()
	return off
}

func (v *visit) registryCode() string {
	if v.dev.RegistryCode == "" {
		v.dev.RegistryCode = newRegistryCode()
	}
	return v.dev.RegistryCode
}

func newRegistryCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// securityTime answers GET /iclock/rtdata?type=time (Security PUSH).
func (v *visit) securityTime() string {
	local := v.req.at.In(v.location())
	_, off := local.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	return fmt.Sprintf("DateTime=%d,ServerTZ=%s%02d%02d\n", EncodeTime(local), sign, off/3600, off%3600/60)
}

// heartbeat handles GET /iclock/getrequest: firmware and counts from INFO=,
// the completeness watermark, and the re-read of options after a change of
// UTC offset.
func (v *visit) heartbeat(ctx context.Context) (reply, error) {
	d := &v.dev
	if info, ok := ParseInfo(v.req.query.Get("INFO")); ok {
		if info.Firmware != "" {
			d.Firmware = info.Firmware
		}
		setCount(&d.Counts.Users, info.Users)
		setCount(&d.Counts.Fingerprints, info.Fingerprints)
		setCount(&d.Counts.Logs, info.Logs)
		setCount(&d.Counts.Faces, info.Faces)
	}
	// Devices poll once their upload queue is empty (they use /iclock/ping
	// while they drain it). Some firmware polls between backlog batches, so a
	// poll proves the queue empty only when no backlog arrived since the
	// previous one; then every record made before this poll is here, but for
	// a real-time upload still on its way.
	if !d.LastHeartbeatAt.IsZero() && !d.LastBacklogAt.After(d.LastHeartbeatAt) {
		if through := v.req.at.Add(-completenessMargin); through.After(d.CompleteThrough) {
			d.CompleteThrough = through
		}
	}
	d.LastHeartbeatAt = v.req.at

	var lines []string
	if v.needsOptionReload() {
		d.TZCheckAt = v.req.at
		lines = append(lines, fmt.Sprintf("C:tz%d:CHECK", v.req.at.Unix()%1_000_000_000))
	}
	queued, err := v.outbox(ctx, maxReplyCommands-len(lines))
	if err != nil {
		return reply{}, err
	}
	lines = append(lines, queued...)
	if len(lines) == 0 {
		return ok("OK"), nil
	}
	body := strings.Join(lines, "\n") + "\n"
	if commands.Chinese(v.dev) {
		// Names go to Chinese-language firmware in GB18030.
		if enc, err := simplifiedchinese.GB18030.NewEncoder().String(body); err == nil {
			body = enc
		}
	}
	return ok(body), nil
}

// Limits of one reply's commands (PUSH protocol: about 200 commands or
// 40 KB per reply).
const (
	maxReplyCommands = 200
	maxReplyBytes    = 40 << 10
)

// outbox hands the device its next command lines, in order: those queued,
// and those sent earlier that it never answered (sent again after
// CommandResend). REBOOT ends a reply: firmware ignores what follows it.
func (v *visit) outbox(ctx context.Context, room int) ([]string, error) {
	pending, err := v.tx.Outbox(ctx, v.dev.ID, v.req.at.Add(-v.g.resendAfter()), room)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	var out []string
	var sent []attendance.CommandLine
	size := 0
	for _, l := range pending {
		text := l.Text
		if text == commands.SetTimeLine {
			text = fmt.Sprintf("SET OPTIONS DateTime=%d", EncodeTime(v.req.at.In(v.location())))
		}
		line := "C:" + commands.LineID(l) + ":" + text
		if size+len(line)+1 > maxReplyBytes && len(out) > 0 {
			break
		}
		out, sent, size = append(out, line), append(sent, l), size+len(line)+1
		if text == commands.RebootLine {
			break
		}
	}
	return out, v.tx.MarkSent(ctx, sent)
}

// needsOptionReload reports whether the device runs on a TimeZone other
// than its zone's current offset (a DST change, a new zone, or a handshake
// made before the device was registered), and was not asked recently.
func (v *visit) needsOptionReload() bool {
	d := &v.dev
	if d.Protocol == "security" || (!d.TZCheckAt.IsZero() && v.req.at.Sub(d.TZCheckAt) < tzCheckEvery) {
		return false
	}
	return d.TZOffsetSent == nil || *d.TZOffsetSent != v.offsetNow()/60
}

func setCount(dst **int, v *int) {
	if v != nil {
		*dst = v
	}
}

// commandResults records what a devicecmd report tells: options the device
// sent with an INFO answer, and the results of queued command lines (IDs in
// digits), which may complete commands. Results of lines this device was
// not sent, or already answered, are ignored.
func (v *visit) commandResults(ctx context.Context, results []CommandResult) error {
	var lines []store.LineResult
	for _, r := range results {
		if strings.EqualFold(r.Cmd, "INFO") || len(r.Extra) > 0 {
			v.learnOptions(r.Extra)
		}
		seq, err := strconv.ParseInt(r.ID, 10, 64)
		if err != nil || seq <= 0 || r.ReturnRaw == "" {
			continue
		}
		lines = append(lines, store.LineResult{Seq: seq, Return: r.Return})
	}
	if len(lines) == 0 || v.replay {
		return nil
	}
	done, err := v.tx.ApplyResults(ctx, v.dev.ID, lines, commands.Succeeded)
	if err != nil {
		return err
	}
	return commands.Finish(ctx, v.tx, done)
}

// learnOptions reads counts, capacity and firmware from device parameters
// (an options push, a registry body, an INFO reply).
func (v *visit) learnOptions(opts map[string]string) {
	d := &v.dev
	get := func(keys ...string) (string, bool) {
		for k, val := range opts {
			for _, want := range keys {
				if strings.EqualFold(strings.TrimPrefix(k, "~"), want) {
					return strings.TrimSpace(val), true
				}
			}
		}
		return "", false
	}
	num := func(keys ...string) *int {
		s, ok := get(keys...)
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil
		}
		return &n
	}
	if fw, ok := get("FWVersion", "FirmVer", "FirmwareVersion"); ok && fw != "" {
		d.Firmware = fw
	}
	setCount(&d.Counts.LogCapacity, num("MaxAttLogCount", "~MaxAttLogCount", "MaxTransactionCount", "AttLogMaxCount"))
	setCount(&d.Counts.Logs, num("AttLogCount", "TransactionCount"))
	setCount(&d.Counts.Users, num("UserCount"))
	setCount(&d.Counts.Fingerprints, num("FPCount", "FingerCount"))
	setCount(&d.Counts.Faces, num("FaceCount"))
}

// checkLogCapacity warns once when the device's attendance log is nearly
// full: devices delete their oldest records when it is.
func (v *visit) checkLogCapacity() {
	d := &v.dev
	c := d.Counts
	if c.Logs == nil || c.LogCapacity == nil || *c.LogCapacity <= 0 {
		return
	}
	pct := *c.Logs * 100 / *c.LogCapacity
	switch {
	case pct >= logWarnPercent && !d.LogWarned:
		d.LogWarned = true
		v.events = append(v.events, event.LogNearlyFull(*d, *c.Logs, *c.LogCapacity, v.req.at))
	case pct < logRearmPercent:
		d.LogWarned = false
	}
}

// upload handles a data POST: the records are stored (or kept) in this
// transaction, before the reply says OK.
func (v *visit) upload(ctx context.Context) (reply, error) {
	req := v.req
	kind := uploadKind(req)
	switch {
	case kind == "ATTLOG":
		recs := ParseATTLOG(req.body)
		v.stamp("ATTLOG")
		return ok(OKCount(len(recs))), v.attendance(ctx, recs)
	case kind == "OPERLOG":
		n, err := v.operlog(ctx, ParseOPERLOG(req.body))
		v.stamp("OPERLOG")
		return ok(OKCount(n)), err
	case kind == "rtlog":
		var punches []Record
		var other [][]byte
		for _, e := range ParseRtlog(req.body) {
			if e.IsPunch {
				punches = append(punches, e.Record)
			} else {
				other = append(other, []byte(e.Raw))
			}
		}
		if len(other) > 0 {
			if err := v.keep(ctx, "rtlog-events", bytes.Join(other, []byte("\n")), "device events that are not punches"); err != nil {
				return reply{}, err
			}
		}
		return ok("OK"), v.attendance(ctx, punches)
	case kind == "rtstate":
		return ok("OK"), nil // door and alarm states: acknowledged, not kept
	case strings.HasPrefix(kind, "tabledata:"):
		n, err := v.tabledata(ctx, strings.TrimPrefix(kind, "tabledata:"))
		return ok(tableAck(req, n)), err
	case kind == "options":
		v.learnOptions(ParseOptions(req.body))
		return ok("OK"), v.keep(ctx, kind, req.body, "")
	default:
		// ATTPHOTO, BIOPHOTO, ERRORLOG, IDCARD and tables we do not know:
		// acknowledged and kept for inspection, never refused.
		return ok("OK"), v.keep(ctx, kind, req.body, "")
	}
}

// stamp remembers the upload stamp of a table, handed back in the next
// handshake.
func (v *visit) stamp(table string) {
	if s := v.req.query.Get("Stamp"); s != "" && s != "0" {
		if v.dev.Stamps == nil {
			v.dev.Stamps = map[string]string{}
		}
		v.dev.Stamps[table] = s
	}
}

func (v *visit) keep(ctx context.Context, kind string, body []byte, note string) error {
	return v.tx.KeepUpload(ctx, v.dev.AccountID, v.dev.ID, kind, v.req.rawQuery, body, note)
}

// attendance ingests punch records and learns the device clock from them.
func (v *visit) attendance(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if !v.replay {
		v.sampleClock(recs)
	}
	inputs := make([]ingest.Input, len(recs))
	for i, r := range recs {
		inputs[i] = ingest.Input{
			Badge: r.PIN, DeviceTime: r.Time, Wall: r.Wall, State: r.State, Verify: r.Verify, WorkCode: r.WorkCode,
			Raw: r.Raw, Malformed: r.Err,
		}
		if r.Err != "" {
			inputs[i].DedupKey = ingest.MalformedKey(v.dev.SerialNumber, r.Raw)
		} else {
			inputs[i].DedupKey = ingest.DeviceDedupKey(v.dev.SerialNumber, r.PIN, r.Wall.Format(DeviceTimeLayout), r.State, r.Verify)
		}
	}
	results, err := ingest.Process(ctx, v.tx, ingest.Batch{
		Device: v.dev, Settings: v.acct.Settings, Source: attendance.SourcePush, ReceivedAt: v.req.at, Inputs: inputs,
	})
	if err != nil {
		return err
	}
	backlog := len(recs) > realtimeMaxLines
	for _, res := range results {
		v.g.countRecord(res)
		if res.Outcome != ingest.Duplicate && !res.Punch.Time.IsZero() && v.req.at.Sub(res.Punch.Time) > backlogAge {
			backlog = true
		}
	}
	if backlog && !v.replay {
		v.dev.LastBacklogAt = v.req.at
	}
	return nil
}

// countRecord counts a record in the metrics.
func (g *Gateway) countRecord(res ingest.Result) {
	outcome := [...]string{"accepted", "duplicate", "rejected"}[res.Outcome]
	g.records.WithLabelValues(outcome, string(res.Punch.Reason)).Inc()
}

// sampleClock takes clock-offset samples from a real-time upload: a few
// records from a device that has been online for several poll intervals and
// polled within the last few — not the backlog that follows a reconnection.
// Each sample is device time (in its zone) minus receive time, half a second
// added for the whole seconds devices write; the offset is the median of
// recent samples, so one stray record does not move it.
func (v *visit) sampleClock(recs []Record) {
	d := &v.dev
	poll := v.g.cfg.PollInterval
	if len(recs) > realtimeMaxLines || d.LastHeartbeatAt.IsZero() || v.req.at.Sub(d.LastHeartbeatAt) > 3*poll ||
		v.req.at.Sub(d.OnlineSince) < 3*poll {
		return
	}
	loc := v.location()
	for _, r := range recs {
		if r.Err != "" {
			continue
		}
		device := ingest.ToUTC(r.Wall, loc, v.req.at)
		sample := device.Sub(v.req.at).Seconds() + 0.5
		if math.Abs(sample) > maxClockSample.Seconds() {
			continue
		}
		d.ClockSamples = append(d.ClockSamples, math.Round(sample*10)/10)
	}
	if n := len(d.ClockSamples); n > clockSamples {
		d.ClockSamples = d.ClockSamples[n-clockSamples:]
	}
	if len(d.ClockSamples) == 0 {
		return
	}
	sorted := slices.Clone(d.ClockSamples)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + median) / 2
	}
	offset := int(math.Round(median))
	d.ClockOffsetSeconds = &offset
}

// operlog handles an OPERLOG upload: USER records update what we know of the
// device's users; template lines are counted (biometric templates are not
// kept); OPLOG and other lines are kept as they came.
func (v *visit) operlog(ctx context.Context, recs []Line) (int, error) {
	var users []attendance.DeviceUser
	var kept [][]byte
	for _, l := range recs {
		switch strings.ToUpper(l.Tag) {
		case "USER":
			if u, ok := v.deviceUser(l.Fields, "pin", "name", "pri", "passwd", "card", "grp"); ok {
				users = append(users, u)
			}
		case "FP", "FACE", "FVEIN", "BIODATA":
			if pin := strings.TrimSpace(l.Fields["pin"]); pin != "" && checkPIN(pin) == "" {
				if err := v.tx.CountDeviceTemplates(ctx, v.dev.ID, pin, 1, v.req.at); err != nil {
					return 0, err
				}
			}
		default:
			kept = append(kept, []byte(l.Raw))
		}
	}
	if err := v.tx.UpsertDeviceUsers(ctx, users); err != nil {
		return 0, err
	}
	if len(kept) > 0 {
		if err := v.keep(ctx, "OPERLOG", bytes.Join(kept, []byte("\n")), ""); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

// deviceUser reads a user record whose fields have the given names (they
// differ between OPERLOG and Security PUSH tables).
func (v *visit) deviceUser(f map[string]string, pinKey, nameKey, priKey, pwKey, cardKey, groupKey string) (attendance.DeviceUser, bool) {
	pin := strings.TrimSpace(f[pinKey])
	if checkPIN(pin) != "" {
		return attendance.DeviceUser{}, false
	}
	raw := []byte(f[nameKey])
	u := attendance.DeviceUser{
		DeviceID: v.dev.ID, PIN: pin, Name: decodeName(raw, v.dev.Language), NameRaw: raw,
		Card: strings.TrimSpace(f[cardKey]), HasPassword: strings.TrimSpace(f[pwKey]) != "",
		Group: strings.TrimSpace(f[groupKey]), UpdatedAt: v.req.at,
	}
	if n, err := strconv.Atoi(strings.TrimSpace(f[priKey])); err == nil {
		u.Privilege = &n
	}
	return u, true
}

// decodeName reads a name as devices send it: UTF-8, with a GB18030
// fallback (a superset of GB2312 and GBK) for Chinese-language devices. Other
// bytes that are not UTF-8 are shown with replacement characters; the raw
// bytes are kept beside the name either way.
func decodeName(raw []byte, language string) string {
	if utf8.Valid(raw) {
		return strings.TrimSpace(string(raw))
	}
	if language == chineseSimplified || language == chineseTraditional {
		if out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(raw); err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(raw), "\uFFFD"))
}

// tabledata handles a Security PUSH table upload: user records update the
// device's users, transaction records are punches, others are kept.
func (v *visit) tabledata(ctx context.Context, table string) (int, error) {
	recs := ParseTableData(v.req.body)
	switch table {
	case "user":
		var users []attendance.DeviceUser
		for _, l := range recs {
			if u, ok := v.deviceUser(l.Fields, "pin", "name", "privilege", "password", "cardno", "group"); ok {
				users = append(users, u)
			}
		}
		return len(recs), v.tx.UpsertDeviceUsers(ctx, users)
	case "transaction":
		punches := make([]Record, 0, len(recs))
		for _, l := range recs {
			punches = append(punches, transactionRecord(l))
		}
		return len(recs), v.attendance(ctx, punches)
	}
	return len(recs), v.keep(ctx, "tabledata:"+table, v.req.body, "")
}

// transactionRecord reads a Security PUSH transaction-log line: keyed fields,
// the time either written out or in ZKTeco's encoded seconds.
func transactionRecord(l Line) Record {
	f := l.Fields
	r := Record{Raw: l.Raw, PIN: strings.TrimSpace(f["pin"]), Verify: strings.TrimSpace(firstOf(f, "verifytype", "verified")),
		Index: strings.TrimSpace(f["index"])}
	r.Time = strings.TrimSpace(firstOf(f, "time", "time_second"))
	if n, err := strconv.ParseInt(r.Time, 10, 64); err == nil && n > 0 {
		r.Time = DecodeTime(n).Format(DeviceTimeLayout)
	}
	r.State = parseState(firstOf(f, "inoutstate", "inoutstatus"))
	r.finish()
	return r
}

func firstOf(f map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := f[k]; ok {
			return v
		}
	}
	return ""
}

// ReplayHeld processes the uploads held for the serial of d — a device just
// registered — oldest first, as if they had arrived from it then, in tx. It
// returns how many uploads it processed.
func (g *Gateway) ReplayHeld(ctx context.Context, tx *store.Tx, d attendance.Device) (int, error) {
	held, err := tx.ClaimHeld(ctx, d.SerialNumber)
	if err != nil || len(held) == 0 {
		return 0, err
	}
	acct, err := tx.Account(ctx, d.AccountID)
	if err != nil {
		return 0, err
	}
	v := &visit{g: g, tx: tx, dev: d, acct: acct, replay: true}
	for _, h := range held {
		v.req = request{
			endpoint: "cdata", method: http.MethodPost, query: ParseQuery(h.Query), rawQuery: h.Query,
			body: h.Body, serial: h.SerialNumber, ip: h.RemoteIP, at: h.ReceivedAt, kind: h.Kind,
		}
		if _, err := v.upload(ctx); err != nil {
			return 0, fmt.Errorf("held upload %d: %w", h.ID, err)
		}
	}
	return len(held), v.finish(ctx)
}

// MarkOffline turns devices last seen before cutoff offline and records
// their device.status events; it returns how many changed. Each device
// changes once, however many nodes run it at the same moment.
func MarkOffline(ctx context.Context, s *store.Store, cutoff time.Time) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *store.Tx) error {
		devs, err := tx.MarkOffline(ctx, cutoff.UnixMicro(), 500)
		if err != nil {
			return err
		}
		events := make([]attendance.Event, 0, len(devs))
		for _, d := range devs {
			d.Status = attendance.DeviceStatusOffline
			events = append(events, event.DeviceStatus(d, attendance.DeviceStatusOnline, tx.Now))
		}
		n = len(devs)
		return tx.InsertEvents(ctx, events)
	})
	return n, err
}
