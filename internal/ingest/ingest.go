package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Input is one raw attendance record, from a device or the API.
type Input struct {
	Badge      string
	DeviceTime string    // the device's wall time as sent ("" for API instants)
	Wall       time.Time // DeviceTime parsed, in UTC as a container
	Instant    time.Time // an exact instant (API timestamps with an offset): no zone or clock correction
	State      *int
	Verify     string
	WorkCode   string
	Raw        string
	Malformed  string // why the record could not be read ("" when it could)
	DedupKey   string
	// What an API client may state.
	Direction  attendance.Direction
	Method     attendance.Method
	Confidence *float64
	ExternalID *string
}

// Batch is the records of one upload, in the order the device sent them.
type Batch struct {
	Device     attendance.Device
	Settings   attendance.Settings
	Source     string
	ReceivedAt time.Time
	Inputs     []Input
}

// Outcome is what became of one input.
type Outcome int

// Outcomes.
const (
	Accepted  Outcome = iota // a new punch, delivered as an event
	Duplicate                // an exact re-upload of a record already stored: nothing new
	Rejected                 // held back with a reason, listed under /v1/attendance/rejected
)

// Result is the outcome of one input, with its punch (not for duplicates).
type Result struct {
	Outcome Outcome
	Punch   attendance.Punch
}

// MalformedKey identifies an unreadable record by its bytes, so that its
// re-uploads are stored once too.
func MalformedKey(serial, raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return "m|" + serial + "|" + hex.EncodeToString(sum[:12])
}

// history is what the batch knows of an employee's accepted punches: those
// stored, and those accepted earlier in this batch.
type history map[string][]store.PunchRef

func (h history) add(r store.PunchRef) {
	list := h[r.EmployeeID]
	i, _ := slices.BinarySearchFunc(list, r.Time, func(x store.PunchRef, t time.Time) int { return x.Time.Compare(t) })
	h[r.EmployeeID] = slices.Insert(list, i, r)
}

// earlierSameDay counts the employee's accepted punches before t on workDate.
func (h history) earlierSameDay(employeeID string, t time.Time, workDate int) int {
	n := 0
	for _, r := range h[employeeID] {
		if r.WorkDate == workDate && r.Time.Before(t) {
			n++
		}
	}
	return n
}

// nearOnDevice reports whether the employee has an accepted punch on the
// device within window of t.
func (h history) nearOnDevice(employeeID, deviceID string, t time.Time, window time.Duration) (store.PunchRef, bool) {
	for _, r := range h[employeeID] {
		if r.DeviceID == deviceID && absDuration(r.Time.Sub(t)) < window {
			return r, true
		}
	}
	return store.PunchRef{}, false
}

// Process normalizes a batch in tx: exact re-uploads are recognised and
// skipped, every other record is stored once — accepted with its
// attendance.punch event, or rejected with its reason. Records are taken in
// the order given, so an offline backlog keeps the device's order.
func Process(ctx context.Context, tx *store.Tx, b Batch) ([]Result, error) {
	loc, err := attendance.Location(b.Device.Timezone)
	if err != nil {
		return nil, fmt.Errorf("device %s timezone: %w", b.Device.ID, err)
	}
	results := make([]Result, len(b.Inputs))

	// Exact re-uploads (already stored, or twice in this batch), and the
	// employees with the batch's badges, read together. Their normalization
	// locks are taken with them (PostgreSQL), before the history below is
	// read.
	keys := make([]string, 0, len(b.Inputs))
	var badges []string
	seenBadge := map[string]bool{}
	for _, in := range b.Inputs {
		keys = append(keys, in.DedupKey)
		if !seenBadge[in.Badge] {
			seenBadge[in.Badge] = true
			badges = append(badges, in.Badge)
		}
	}
	stored, employees, err := tx.IngestLookup(ctx, b.Device.AccountID, keys, badges)
	if err != nil {
		return nil, err
	}
	firstByKey := map[string]int{}
	var fresh []int
	for i, in := range b.Inputs {
		if stored[in.DedupKey] {
			results[i].Outcome = Duplicate
			continue
		}
		if j, seen := firstByKey[in.DedupKey]; seen {
			results[i].Outcome = Duplicate
			results[j].Punch.Folded = true
			continue
		}
		firstByKey[in.DedupKey] = i
		fresh = append(fresh, i)
	}

	// The employees' accepted punches around the batch.
	base := make([]attendance.Punch, len(b.Inputs))
	var lo, hi time.Time
	var empIDs []string
	for _, i := range fresh {
		p := newPunch(b, loc, b.Inputs[i])
		base[i] = p
		if p.Time.IsZero() {
			continue
		}
		if lo.IsZero() || p.Time.Before(lo) {
			lo = p.Time
		}
		if p.Time.After(hi) {
			hi = p.Time
		}
		if e, ok := employees[b.Inputs[i].Badge]; ok && !slices.Contains(empIDs, e.ID) {
			empIDs = append(empIDs, e.ID)
		}
	}
	hist := history{}
	if len(empIDs) > 0 {
		// Direction counts the earlier punches of the same attendance day;
		// the duplicate window looks both ways.
		window := b.Device.DedupWindow(b.Settings)
		from := workDayStart(lo, loc, b.Settings.DayStartMinutes)
		if w := lo.Add(-window); w.Before(from) {
			from = w
		}
		refs, err := tx.AcceptedPunches(ctx, b.Device.AccountID, empIDs, from, hi.Add(window))
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			hist[r.EmployeeID] = append(hist[r.EmployeeID], r)
		}
	}

	var punches []attendance.Punch
	var events []attendance.Event
	window := b.Device.DedupWindow(b.Settings)
	mode := b.Device.Direction(b.Settings)
	for _, i := range fresh {
		p := base[i]
		p.Folded = results[i].Punch.Folded
		in := b.Inputs[i]
		emp, known := employees[in.Badge]
		if known {
			p.EmployeeID = &emp.ID
			p.Employee = &attendance.EmployeeRef{ID: emp.ID, BadgeNumber: emp.BadgeNumber, Name: emp.Name}
		}
		reject := func(r attendance.Reason, detail string) {
			p.Status, p.Reason, p.Detail = attendance.PunchRejected, r, detail
		}
		switch {
		case in.Malformed != "":
			reject(attendance.ReasonMalformed, "The device sent a record that could not be read: "+in.Malformed+".")
		case p.Reason != "":
			// a bad time, set by newPunch
		case !known:
			reject(attendance.ReasonUnregisteredBadge, "No employee of this account has badge number "+in.Badge+
				". The record is held and released when an employee with this badge number is created.")
		case !emp.Active:
			reject(attendance.ReasonInactiveEmployee, "Employee "+emp.ID+" is inactive. Reactivate the employee and release the record to deliver it.")
		default:
			if prev, dup := hist.nearOnDevice(emp.ID, p.DeviceID, p.Time, window); dup && window > 0 {
				reject(attendance.ReasonDuplicateWindow, fmt.Sprintf("A punch by the same employee on the same device at %s is within the %s duplicate window.",
					event.FormatTime(prev.Time), window))
				for j := range punches { // fold into its twin if that was accepted in this batch
					if punches[j].Status == attendance.PunchAccepted && punches[j].EmployeeID != nil && *punches[j].EmployeeID == emp.ID && punches[j].Time.Equal(prev.Time) && punches[j].DeviceID == p.DeviceID {
						punches[j].Folded = true
					}
				}
				break
			}
			decideDirection(&p, in, mode, hist)
			p.Status = attendance.PunchAccepted
			hist.add(store.PunchRef{EmployeeID: emp.ID, DeviceID: p.DeviceID, Time: p.Time, WorkDate: p.WorkDate})
		}
		punches = append(punches, p)
		results[i] = Result{Outcome: Rejected, Punch: p}
		if p.Status == attendance.PunchAccepted {
			results[i].Outcome = Accepted
		}
	}

	// Events are built after folding is known, then written with the punches.
	for j := range punches {
		p := &punches[j]
		if p.Status != attendance.PunchAccepted {
			continue
		}
		ev := event.Punch(*p, p.Device, *p.Employee, tx.Now)
		p.EventID = &ev.ID
		events = append(events, ev)
	}
	inserted, err := tx.InsertPunches(ctx, punches)
	if err != nil {
		return nil, err
	}
	if len(inserted) != len(punches) {
		// Another transaction stored some of these records first: run again
		// so they are seen as re-uploads.
		return nil, fmt.Errorf("ingest: %w: %d of %d records stored concurrently", store.ErrRetry, len(punches)-len(inserted), len(punches))
	}
	if err := tx.InsertEvents(ctx, events); err != nil {
		return nil, err
	}
	for j, i := range fresh { // punches are in the order of fresh
		results[i].Punch = punches[j]
	}
	return results, nil
}

// workDayStart is when the attendance day holding t began, in loc.
func workDayStart(t time.Time, loc *time.Location, dayStartMinutes int) time.Time {
	shifted := t.In(loc).Add(-time.Duration(dayStartMinutes) * time.Minute)
	y, m, d := shifted.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(time.Duration(dayStartMinutes) * time.Minute)
	if start.After(t) { // a DST change inside the day start
		start = start.Add(-time.Hour)
	}
	return start
}

// newPunch builds the punch of an input with its times settled: zone,
// clock offset, local and attendance dates, and the bad-time checks.
func newPunch(b Batch, loc *time.Location, in Input) attendance.Punch {
	p := attendance.Punch{
		ID: id.New(id.Punch), AccountID: b.Device.AccountID, DeviceID: b.Device.ID, BadgeNumber: in.Badge, Device: event.Ref(b.Device),
		DeviceTime: in.DeviceTime, ReceivedAt: b.ReceivedAt, State: in.State, Verify: in.Verify, WorkCode: in.WorkCode,
		Confidence: in.Confidence, ExternalID: in.ExternalID, Source: b.Source, Raw: in.Raw, DedupKey: in.DedupKey,
		Method: in.Method, CreatedAt: b.ReceivedAt,
	}
	if p.Method == "" {
		p.Method = MethodFromVerify(in.Verify, b.Device.VerifyCodes)
	}
	if in.Malformed != "" {
		return p
	}
	switch {
	case !in.Instant.IsZero():
		p.Time = in.Instant.UTC()
	default:
		offset := 0
		if b.Device.ClockOffsetSeconds != nil {
			offset = *b.Device.ClockOffsetSeconds
		}
		p.ClockOffsetSeconds = offset
		p.Time = ToUTC(in.Wall, loc, b.ReceivedAt.Add(time.Duration(offset)*time.Second)).Add(-time.Duration(offset) * time.Second)
	}
	local := p.Time.In(loc)
	p.LocalTime = local.Format(time.RFC3339Nano)
	p.LocalDate = attendance.DateInt(local)
	p.WorkDate = WorkDate(local, b.Settings.DayStartMinutes)
	if r, detail := CheckTime(p.Time, p.LocalDate, b.ReceivedAt, b.Settings); r != "" {
		p.Status, p.Reason, p.Detail = attendance.PunchRejected, r, detail
	}
	return p
}

// decideDirection sets the direction of an accepted punch: the client's
// word, the device's state key in device mode, otherwise the day rule.
func decideDirection(p *attendance.Punch, in Input, mode attendance.DirectionMode, h history) {
	if in.Direction != "" {
		p.Direction, p.DirectionSource = in.Direction, attendance.DirectionFromClient
		return
	}
	earlier := h.earlierSameDay(*p.EmployeeID, p.Time, p.WorkDate)
	if mode == attendance.DirectionDevice {
		if d, ok := DirectionFromState(in.State); ok {
			p.Direction, p.DirectionSource = d, attendance.DirectionFromDevice
			return
		}
		// No usable state key (255, or none): fall back to the day rule.
		p.Direction, p.DirectionSource = InferDirection(attendance.DirectionFirstInLastOut, earlier), attendance.DirectionFromFallback
		return
	}
	p.Direction, p.DirectionSource = InferDirection(mode, earlier), attendance.DirectionFromRule
}
