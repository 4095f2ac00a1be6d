package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Create queues a command for a device: its lines, one per item, in the
// device's dialect, fetched on the device's next poll.
func Create(ctx context.Context, tx *store.Tx, d attendance.Device, in attendance.CommandInput, source, batchID string) (attendance.Command, error) {
	return create(ctx, tx, &roster{}, d, in, source, batchID)
}

// roster caches the account's employees for the commands of one request
// (a batch reads them once, not once per device).
type roster struct {
	active    []attendance.Employee
	activeSet bool
	byBadge   map[string]attendance.Employee
	looked    map[string]bool // badges read (found or not)
}

func (r *roster) activeEmployees(ctx context.Context, tx *store.Tx, accountID string) ([]attendance.Employee, error) {
	if !r.activeSet {
		var err error
		if r.active, err = tx.ActiveEmployees(ctx, accountID); err != nil {
			return nil, err
		}
		r.activeSet = true
		if r.byBadge == nil {
			r.byBadge = make(map[string]attendance.Employee, len(r.active))
		}
		for _, e := range r.active {
			r.byBadge[e.BadgeNumber] = e
		}
	}
	return r.active, nil
}

// employees returns the account's live employees with these badges.
func (r *roster) employees(ctx context.Context, tx *store.Tx, accountID string, badges []string) (map[string]attendance.Employee, error) {
	if r.byBadge == nil {
		r.byBadge, r.looked = map[string]attendance.Employee{}, map[string]bool{}
	}
	if r.looked == nil {
		r.looked = map[string]bool{}
	}
	var missing []string
	for _, b := range badges {
		if _, ok := r.byBadge[b]; !ok && !r.looked[b] {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		found, err := tx.EmployeesByBadge(ctx, accountID, missing)
		if err != nil {
			return nil, err
		}
		for _, b := range missing {
			r.looked[b] = true
		}
		for b, e := range found {
			r.byBadge[b] = e
		}
	}
	return r.byBadge, nil
}

func create(ctx context.Context, tx *store.Tx, r *roster, d attendance.Device, in attendance.CommandInput, source, batchID string) (attendance.Command, error) {
	c := attendance.Command{AccountID: d.AccountID, DeviceID: d.ID, BatchID: batchID, Kind: in.Kind, Source: source, ExpiresAt: in.ExpiresAt}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = tx.Now.Add(attendance.DefaultCommandLifetime)
	}
	lines, err := build(ctx, tx, r, d, in)
	if err != nil {
		return c, err
	}
	c.Payload = Payload(in)
	if err := tx.InsertCommand(ctx, &c, lines); err != nil {
		return c, err
	}
	if len(lines) == 0 {
		// Nothing to send (an empty roster): done at once.
		done, finished, err := tx.FinishIfDone(ctx, c.Seq)
		if err != nil || !finished {
			return c, err
		}
		return done, Finish(ctx, tx, []attendance.Command{done})
	}
	return c, nil
}

// build makes the lines of a command for a device.
func build(ctx context.Context, tx *store.Tx, r *roster, d attendance.Device, in attendance.CommandInput) ([]attendance.CommandLine, error) {
	one := func(text string) []attendance.CommandLine { return []attendance.CommandLine{{Text: text}} }
	switch in.Kind {
	case attendance.CommandSyncEmployees:
		return syncLines(ctx, tx, r, d, in.Employees)
	case attendance.CommandSyncAllEmployees:
		active, err := r.activeEmployees(ctx, tx, d.AccountID)
		if err != nil {
			return nil, err
		}
		records := make([]attendance.EmployeeRecord, len(active))
		for i, e := range active {
			records[i] = attendance.EmployeeRecord{BadgeNumber: e.BadgeNumber}
		}
		return syncLines(ctx, tx, r, d, records)
	case attendance.CommandDeleteEmployees:
		lines := make([]attendance.CommandLine, len(in.Badges))
		for i, b := range in.Badges {
			lines[i] = attendance.CommandLine{Item: i, Key: b, Text: deleteLine(d, b)}
		}
		return lines, nil
	case attendance.CommandUnlockDoor:
		return one(unlockLine(d, in.Seconds)), nil
	case attendance.CommandReboot:
		return one(RebootLine), nil
	case attendance.CommandSetTime:
		return one(setTimeLine(d)), nil
	case attendance.CommandReupload:
		loc, err := attendance.LoadTimezone("timezone", d.Timezone)
		if err != nil {
			return nil, err
		}
		return one(reuploadLine(d, loc, in.Start, in.End)), nil
	case attendance.CommandInfo:
		return one(infoLine(d)), nil
	}
	return nil, attendance.Errorf(attendance.CodeUnknownCommand, "command", "%q is not a command.", in.Kind)
}

// syncLines writes employees to a device with everything known of them:
// what the request gives, else the account's employee (name, card), else
// what the device reported (privilege, card, group). Fields known nowhere
// are left out, so the device keeps what it has.
func syncLines(ctx context.Context, tx *store.Tx, known *roster, d attendance.Device, records []attendance.EmployeeRecord) ([]attendance.CommandLine, error) {
	badges := make([]string, len(records))
	for i, r := range records {
		badges[i] = r.BadgeNumber
	}
	employees, err := known.employees(ctx, tx, d.AccountID, badges)
	if err != nil {
		return nil, err
	}
	onDevice, err := tx.DeviceUsers(ctx, d.ID, badges)
	if err != nil {
		return nil, err
	}
	lines := make([]attendance.CommandLine, len(records))
	for i, r := range records {
		u := user{pin: r.BadgeNumber}
		e, isEmployee := employees[r.BadgeNumber]
		du, onIt := onDevice[r.BadgeNumber]
		switch {
		case r.Name.Set:
			u.name = &r.Name.Value
		case isEmployee && e.Name != "":
			u.name = &e.Name
		case onIt && du.Name != "":
			u.name = &du.Name
		}
		switch {
		case r.Card.Set:
			u.card = &r.Card.Value
		case isEmployee && e.CardNumber != nil:
			u.card = e.CardNumber
		case onIt && du.Card != "":
			u.card = &du.Card
		}
		switch {
		case r.Privilege.Set:
			p := privilegeUser
			if r.Privilege.Value == attendance.PrivilegeAdmin {
				p = privilegeAdmin
			}
			u.privilege = &p
		case onIt && du.Privilege != nil:
			u.privilege = du.Privilege
		}
		if onIt && du.Group != "" {
			u.group = &du.Group
		}
		if r.Password.Set {
			u.password = &r.Password.Value
		}
		lines[i] = attendance.CommandLine{Item: i, Key: r.BadgeNumber, Text: syncLine(d, u)}
	}
	return lines, nil
}

// Payload is the JSON a command shows of its input.
func Payload(in attendance.CommandInput) []byte {
	type employee struct {
		BadgeNumber string  `json:"badge_number"`
		Name        *string `json:"name,omitempty"`
		Card        *string `json:"card,omitempty"`
		Privilege   *string `json:"privilege,omitempty"`
		Password    *string `json:"password,omitempty"`
	}
	opt := func(f attendance.Field[string]) *string {
		if f.Set {
			return &f.Value
		}
		return nil
	}
	var v any = struct{}{}
	switch in.Kind {
	case attendance.CommandSyncEmployees:
		es := make([]employee, len(in.Employees))
		for i, e := range in.Employees {
			es[i] = employee{BadgeNumber: e.BadgeNumber, Name: opt(e.Name), Card: opt(e.Card), Privilege: opt(e.Privilege)}
			if e.Password.Set {
				hidden := "********" // never shown back
				es[i].Password = &hidden
			}
		}
		v = map[string]any{"employees": es}
	case attendance.CommandDeleteEmployees:
		v = map[string]any{"badge_numbers": in.Badges}
	case attendance.CommandUnlockDoor:
		v = map[string]any{"seconds": in.Seconds}
	case attendance.CommandReupload:
		v = map[string]any{"start": event.FormatTime(in.Start), "end": event.FormatTime(in.End)}
	}
	b, _ := json.Marshal(v)
	return b
}

// Finish records what commands that reached their final status mean: a
// command.succeeded or command.failed event each, and batch.completed for
// a batch whose last command it was.
func Finish(ctx context.Context, tx *store.Tx, done []attendance.Command) error {
	if len(done) == 0 {
		return nil
	}
	var events []attendance.Event
	devices := map[string]attendance.Device{}
	batches := map[string]bool{}
	for _, c := range done {
		d, ok := devices[c.DeviceID]
		if !ok {
			var err error
			if d, err = tx.DeviceAny(ctx, c.AccountID, c.DeviceID); err != nil {
				return err
			}
			devices[c.DeviceID] = d
		}
		events = append(events, event.Command(c, d, tx.Now))
		if c.BatchID != "" && !batches[c.BatchID] {
			batches[c.BatchID] = true
			completed, err := tx.CompleteBatch(ctx, c.BatchID)
			if err != nil {
				return err
			}
			if completed {
				b, err := tx.Batch(ctx, c.AccountID, c.BatchID)
				if err != nil {
					return err
				}
				events = append(events, event.BatchCompleted(b, tx.Now))
			}
		}
	}
	return tx.InsertEvents(ctx, events)
}

// Expire ends commands past their deadline, with their events.
func Expire(ctx context.Context, s *store.Store, limit int) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *store.Tx) error {
		done, err := tx.ExpireCommands(ctx, limit)
		if err != nil {
			return err
		}
		n = len(done)
		return Finish(ctx, tx, done)
	})
	return n, err
}

// EmployeeChange is an employee created, changed or removed through the API.
type EmployeeChange struct {
	BadgeNumber string
	// Employee is the employee now; nil when deleted.
	Employee *attendance.Employee
	// OldBadge is the badge number the employee had before, when it changed.
	OldBadge string
}

// Changed reports whether an employee changed in what devices hold: badge
// number, name, card or whether they may punch.
func Changed(before, after attendance.Employee) bool {
	card := func(e attendance.Employee) string {
		if e.CardNumber == nil {
			return ""
		}
		return *e.CardNumber
	}
	return before.BadgeNumber != after.BadgeNumber || before.Name != after.Name || card(before) != card(after) || before.Active != after.Active
}

// AutoSync queues, when the account syncs employees automatically, the
// changes for every device of the account: active employees are written,
// deactivated and deleted ones removed. Changes to the same employee that
// a device has not fetched yet are replaced by the newest (they coalesce).
func AutoSync(ctx context.Context, tx *store.Tx, acct attendance.Account, changes []EmployeeChange) error {
	if !acct.Settings.AutoSyncEmployees || len(changes) == 0 {
		return nil
	}
	var write []attendance.EmployeeRecord
	var remove, touched []string
	for _, ch := range changes {
		if ch.OldBadge != "" && ch.OldBadge != ch.BadgeNumber {
			remove = append(remove, ch.OldBadge)
			touched = append(touched, ch.OldBadge)
		}
		touched = append(touched, ch.BadgeNumber)
		if ch.Employee != nil && ch.Employee.Active {
			write = append(write, attendance.EmployeeRecord{BadgeNumber: ch.BadgeNumber})
		} else {
			remove = append(remove, ch.BadgeNumber)
		}
	}
	devices, err := tx.AccountDevices(ctx, acct.ID, "", nil)
	if err != nil {
		return err
	}
	known := &roster{}
	for _, d := range devices {
		if _, err := tx.SupersedeAutoLines(ctx, d.ID, touched); err != nil {
			return err
		}
		if len(write) > 0 {
			lines, err := syncLines(ctx, tx, known, d, write)
			if err != nil {
				return err
			}
			if err := queueAuto(ctx, tx, d, attendance.CommandSyncEmployees, lines); err != nil {
				return err
			}
		}
		if len(remove) > 0 {
			lines := make([]attendance.CommandLine, len(remove))
			for i, b := range remove {
				lines[i] = attendance.CommandLine{Item: i, Key: b, Text: deleteLine(d, b)}
			}
			if err := queueAuto(ctx, tx, d, attendance.CommandDeleteEmployees, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueAuto adds lines to the device's unsent automatic command of the
// kind, or to a new one.
func queueAuto(ctx context.Context, tx *store.Tx, d attendance.Device, kind attendance.CommandKind, lines []attendance.CommandLine) error {
	c, open, err := tx.OpenAutoCommand(ctx, d.ID, kind)
	if err != nil {
		return err
	}
	if open {
		return tx.AppendLines(ctx, &c, lines)
	}
	c = attendance.Command{AccountID: d.AccountID, DeviceID: d.ID, Kind: kind, Source: attendance.CommandSourceAuto,
		ExpiresAt: tx.Now.Add(attendance.DefaultCommandLifetime), Payload: []byte(`{"automatic":true}`)}
	return tx.InsertCommand(ctx, &c, lines)
}

// BatchInput is a batch as a client asks for it.
type BatchInput struct {
	Command   attendance.CommandInput
	DeviceIDs []string // or
	Site      string
	Target    []byte // as given, JSON
}

// MaxBatchDevices bounds the devices of one batch.
const MaxBatchDevices = 1000

// CreateBatch fans a command out to the chosen devices: one command each.
// A device that fails or is offline never fails the others.
func CreateBatch(ctx context.Context, tx *store.Tx, accountID string, in BatchInput) (attendance.Batch, error) {
	var ids []string
	if in.DeviceIDs != nil {
		ids = in.DeviceIDs
	}
	devices, err := tx.AccountDevices(ctx, accountID, in.Site, ids)
	if err != nil {
		return attendance.Batch{}, err
	}
	if ids != nil {
		found := map[string]bool{}
		for _, d := range devices {
			found[d.ID] = true
		}
		for i, want := range ids {
			if !found[want] {
				return attendance.Batch{}, attendance.Errorf(attendance.CodeResourceNotFound, fmt.Sprintf("device_ids[%d]", i), "No device with id %q exists in this account.", want)
			}
		}
	}
	if len(devices) == 0 {
		return attendance.Batch{}, attendance.Errorf(attendance.CodeInvalidParameter, "site", "No device of this account is at site %q.", in.Site)
	}
	if len(devices) > MaxBatchDevices {
		return attendance.Batch{}, attendance.Errorf(attendance.CodeBatchTooLarge, "device_ids", "A batch reaches at most %d devices; split it.", MaxBatchDevices)
	}
	b := attendance.Batch{AccountID: accountID, Kind: in.Command.Kind, Payload: Payload(in.Command), Target: in.Target, Devices: len(devices)}
	if err := tx.InsertBatch(ctx, &b); err != nil {
		return b, err
	}
	known := &roster{}
	for _, d := range devices {
		if _, err := create(ctx, tx, known, d, in.Command, attendance.CommandSourceBatch, b.ID); err != nil {
			return b, err
		}
	}
	return tx.Batch(ctx, accountID, b.ID)
}

// RetryFailed queues again, for each device of the batch whose command
// failed or expired, what did not succeed: the failed and unanswered items
// of employee commands, the whole command otherwise. It returns how many
// commands it queued.
func RetryFailed(ctx context.Context, tx *store.Tx, accountID, batchID string, expiresAt time.Time) (int, error) {
	b, err := tx.Batch(ctx, accountID, batchID)
	if err != nil {
		return 0, err
	}
	var input attendance.CommandInput
	if err := UnmarshalPayload(b.Kind, b.Payload, &input); err != nil {
		return 0, err
	}
	input.Kind, input.ExpiresAt = b.Kind, expiresAt
	n := 0
	for _, c := range b.Commands {
		if c.Status != attendance.CommandFailed && c.Status != attendance.CommandExpired {
			continue
		}
		d, err := tx.DeviceAny(ctx, accountID, c.DeviceID)
		if err != nil {
			return n, err
		}
		retry := input
		switch b.Kind {
		case attendance.CommandSyncEmployees, attendance.CommandSyncAllEmployees, attendance.CommandDeleteEmployees:
			lines, err := tx.CommandLines(ctx, c.Seq)
			if err != nil {
				return n, err
			}
			var keys []string
			for _, l := range lines {
				if l.Status != attendance.CommandSucceeded {
					keys = append(keys, l.Key)
				}
			}
			if b.Kind == attendance.CommandDeleteEmployees {
				retry.Badges = keys
			} else {
				retry.Kind, retry.Employees = attendance.CommandSyncEmployees, recordsFor(input, keys)
			}
		}
		if _, err := Create(ctx, tx, d, retry, attendance.CommandSourceBatch, batchID); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		if err := tx.ReopenBatch(ctx, batchID); err != nil {
			return n, err
		}
	}
	return n, nil
}

// recordsFor picks the records of these badges from a sync's input (or,
// for a whole-roster sync, makes them).
func recordsFor(in attendance.CommandInput, badges []string) []attendance.EmployeeRecord {
	given := map[string]attendance.EmployeeRecord{}
	for _, r := range in.Employees {
		given[r.BadgeNumber] = r
	}
	out := make([]attendance.EmployeeRecord, len(badges))
	for i, b := range badges {
		r, ok := given[b]
		if !ok {
			r = attendance.EmployeeRecord{BadgeNumber: b}
		}
		out[i] = r
	}
	return out
}

// UnmarshalPayload reads back a stored payload (passwords are not stored,
// so a retried sync sends none).
func UnmarshalPayload(kind attendance.CommandKind, payload []byte, in *attendance.CommandInput) error {
	var v struct {
		Employees []struct {
			BadgeNumber string  `json:"badge_number"`
			Name        *string `json:"name"`
			Card        *string `json:"card"`
			Privilege   *string `json:"privilege"`
		} `json:"employees"`
		BadgeNumbers []string `json:"badge_numbers"`
		Seconds      int      `json:"seconds"`
		Start        string   `json:"start"`
		End          string   `json:"end"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return fmt.Errorf("command payload: %w", err)
	}
	field := func(p *string) attendance.Field[string] {
		if p == nil {
			return attendance.Field[string]{}
		}
		return attendance.Some(*p)
	}
	for _, e := range v.Employees {
		in.Employees = append(in.Employees, attendance.EmployeeRecord{
			BadgeNumber: e.BadgeNumber, Name: field(e.Name), Card: field(e.Card), Privilege: field(e.Privilege),
		})
	}
	in.Badges, in.Seconds = v.BadgeNumbers, v.Seconds
	if kind == attendance.CommandReupload {
		var err error
		if in.Start, err = time.Parse(time.RFC3339Nano, v.Start); err != nil {
			return fmt.Errorf("command payload start: %w", err)
		}
		if in.End, err = time.Parse(time.RFC3339Nano, v.End); err != nil {
			return fmt.Errorf("command payload end: %w", err)
		}
	}
	return nil
}

// LineID is the command ID a line is sent under: its sequence number, in
// digits (firmware keeps at most 16 characters).
func LineID(l attendance.CommandLine) string { return strconv.FormatInt(l.Seq, 10) }
