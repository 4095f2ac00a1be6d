package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

var commandList = listSpec{sorts: store.CommandSorts, params: []string{"status", "command"}}

var batchList = listSpec{sorts: store.BatchSorts}

// commandStatuses are the values the status filter takes.
var commandStatuses = []string{"queued", "sent", "succeeded", "failed", "expired"}

// readCommand reads "command", "payload" and "expires_at" of a command or
// batch body into a validated input.
func (s *Server) readCommand(o *object) (attendance.CommandInput, error) {
	var in attendance.CommandInput
	var kind, expires attendance.Field[string]
	o.str("command", &kind)
	o.str("expires_at", &expires)
	raw, hasPayload := o.take("payload")
	if o.err != nil {
		return in, o.err
	}
	if !kind.Set {
		return in, attendance.Errorf(attendance.CodeMissingParameter, "command", "command is required: one of sync_employees, sync_all_employees, delete_employees, unlock_door, reboot, set_time, reupload, info.")
	}
	in.Kind = attendance.CommandKind(kind.Value)
	if !slices.Contains(attendance.CommandKinds, in.Kind) {
		return in, in.Validate(s.now())
	}
	if expires.Set {
		t, err := time.Parse(time.RFC3339Nano, expires.Value)
		if err != nil {
			return in, invalidParam("expires_at", "expires_at %q is not an RFC 3339 instant such as 2026-03-28T18:00:00Z.", expires.Value)
		}
		in.ExpiresAt = t
	}
	p := &object{fields: map[string]json.RawMessage{}, known: map[string]bool{}, prefix: "payload."}
	if hasPayload && !isNull(raw) {
		var err error
		if p, err = parseObject(raw, "payload."); err != nil {
			return in, err
		}
	}
	switch in.Kind {
	case attendance.CommandSyncEmployees:
		items, _ := p.array("employees")
		for i, item := range items {
			e, err := readEmployeeRecord(item, i)
			if err != nil {
				return in, err
			}
			in.Employees = append(in.Employees, e)
		}
	case attendance.CommandDeleteEmployees:
		var badges attendance.Field[[]string]
		p.stringList("badge_numbers", &badges)
		in.Badges = badges.Value
	case attendance.CommandUnlockDoor:
		var secs attendance.Field[int]
		p.integer("seconds", &secs)
		if !secs.Set && p.err == nil {
			return in, attendance.Errorf(attendance.CodeMissingParameter, "payload.seconds", "unlock_door needs payload.seconds: how long the door stays unlocked, 1 to 254.")
		}
		in.Seconds = secs.Value
	case attendance.CommandReupload:
		var start, end attendance.Field[string]
		p.str("start", &start)
		p.str("end", &end)
		for _, f := range []struct {
			name string
			v    attendance.Field[string]
			to   *time.Time
		}{{"start", start, &in.Start}, {"end", end, &in.End}} {
			if !f.v.Set || p.err != nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, f.v.Value)
			if err != nil {
				return in, invalidParam("payload."+f.name, "payload.%s %q is not an RFC 3339 instant such as 2026-03-28T00:00:00Z.", f.name, f.v.Value)
			}
			*f.to = t
		}
	}
	if err := p.done(); err != nil {
		return in, err
	}
	return in, in.Validate(s.now())
}

// readEmployeeRecord reads one entry of payload.employees.
func readEmployeeRecord(raw json.RawMessage, i int) (attendance.EmployeeRecord, error) {
	var e attendance.EmployeeRecord
	o, err := parseObject(raw, fmt.Sprintf("payload.employees[%d].", i))
	if err != nil {
		return e, err
	}
	var badge attendance.Field[string]
	o.str("badge_number", &badge)
	o.str("name", &e.Name)
	o.str("card", &e.Card)
	o.str("privilege", &e.Privilege)
	o.str("password", &e.Password)
	if err := o.done(); err != nil {
		return e, err
	}
	if !badge.Set {
		return e, attendance.Errorf(attendance.CodeMissingParameter, fmt.Sprintf("payload.employees[%d].badge_number", i), "Every employee needs a badge_number: the PIN on the device.")
	}
	e.BadgeNumber = badge.Value
	return e, nil
}

func (s *Server) createCommand(c *call) error {
	devID, o, err := actionOf(c, id.Device, "device")
	if err != nil {
		return err
	}
	in, err := s.readCommand(o)
	if err != nil {
		return err
	}
	if err := o.done(); err != nil {
		return err
	}
	return s.mutate(c, http.StatusCreated, func(tx *store.Tx) (any, error) {
		d, err := tx.Device(c.ctx(), c.acct.ID, devID)
		if err != nil {
			return nil, err
		}
		cmd, err := commands.Create(c.ctx(), tx, d, in, attendance.CommandSourceAPI, "")
		if err != nil {
			return nil, err
		}
		return one[commandView]{viewCommand(cmd)}, nil
	})
}

func (s *Server) getCommand(c *call) error {
	cmdID, err := pathID(c, id.Command, "command")
	if err != nil {
		return err
	}
	cmd, err := s.store.Command(c.ctx(), c.acct.ID, cmdID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[commandView]{viewCommand(cmd)})
}

func (s *Server) listDeviceCommands(c *call) error {
	devID, err := pathID(c, id.Device, "device")
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	lr, err := parseList(q, commandList)
	if err != nil {
		return err
	}
	cq := store.CommandQuery{DeviceID: devID, Status: q.Get("status"), Kind: q.Get("command")}
	if cq.Status != "" && !slices.Contains(commandStatuses, cq.Status) {
		return invalidParam("status", "status must be queued, sent, succeeded, failed or expired; got %q.", cq.Status)
	}
	if cq.Kind != "" && !slices.Contains(attendance.CommandKinds, attendance.CommandKind(cq.Kind)) {
		return attendance.Errorf(attendance.CodeUnknownCommand, "command", "%q is not a command.", cq.Kind)
	}
	if _, err := s.store.Device(c.ctx(), c.acct.ID, devID); err != nil {
		return err
	}
	page, err := s.store.ListCommands(c.ctx(), c.acct.ID, cq, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewCommand))
}

func (s *Server) createBatch(c *call) error {
	o, err := parseBody(c.body)
	if err != nil {
		return err
	}
	in, err := s.readCommand(o)
	if err != nil {
		return err
	}
	var ids attendance.Field[[]string]
	var site attendance.Field[string]
	o.stringList("device_ids", &ids)
	o.str("site", &site)
	if err := o.done(); err != nil {
		return err
	}
	b := commands.BatchInput{Command: in}
	switch {
	case ids.Set && site.Set:
		return invalidParam("site", "Give either device_ids or site, not both.")
	case ids.Set:
		if len(ids.Value) == 0 {
			return invalidParam("device_ids", "device_ids must list at least one device.")
		}
		for i, d := range ids.Value {
			if !id.Valid(id.Device, d) {
				return attendance.Errorf(attendance.CodeResourceNotFound, fmt.Sprintf("device_ids[%d]", i), "No device with id %q exists in this account.", d)
			}
			if slices.Index(ids.Value, d) != i {
				return attendance.Errorf(attendance.CodeDuplicateInBatch, fmt.Sprintf("device_ids[%d]", i), "Device %q is listed twice.", d)
			}
		}
		if len(ids.Value) > commands.MaxBatchDevices {
			return attendance.Errorf(attendance.CodeBatchTooLarge, "device_ids", "A batch reaches at most %d devices; split it.", commands.MaxBatchDevices)
		}
		b.DeviceIDs = ids.Value
		b.Target, _ = json.Marshal(map[string]any{"device_ids": ids.Value})
	case site.Set:
		if site.Value == "" {
			return invalidParam("site", "site must name a site; list devices without one in device_ids.")
		}
		if err := attendance.ValidateText("site", site.Value, 100); err != nil {
			return err
		}
		b.Site = site.Value
		b.Target, _ = json.Marshal(map[string]any{"site": site.Value})
	default:
		return attendance.Errorf(attendance.CodeMissingParameter, "device_ids", "Say which devices: device_ids (a list) or site (every device of the site).")
	}
	return s.mutate(c, http.StatusCreated, func(tx *store.Tx) (any, error) {
		batch, err := commands.CreateBatch(c.ctx(), tx, c.acct.ID, b)
		if err != nil {
			return nil, err
		}
		return one[batchView]{viewBatch(batch)}, nil
	})
}

func (s *Server) getBatch(c *call) error {
	batchID, err := pathID(c, id.Batch, "batch")
	if err != nil {
		return err
	}
	b, err := s.store.Batch(c.ctx(), c.acct.ID, batchID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[batchView]{viewBatch(b)})
}

func (s *Server) listBatches(c *call) error {
	lr, err := parseList(c.r.URL.Query(), batchList)
	if err != nil {
		return err
	}
	page, err := s.store.ListBatches(c.ctx(), c.acct.ID, lr.params)
	if err != nil {
		return err
	}
	out := listOf(lr, page, viewBatchSummary)
	for i := range out.Data {
		devices, items, err := s.store.BatchCounts(c.ctx(), out.Data[i].ID)
		if err != nil {
			return err
		}
		out.Data[i].Progress, out.Data[i].Items = progress(devices), progress(items)
	}
	return c.json(http.StatusOK, out)
}

func progress(c attendance.Counts) event.Progress {
	return event.Progress{Total: c.Total, Succeeded: c.Succeeded, Failed: c.Failed, Pending: c.Pending}
}

// retryFailed queues again what failed on the batch's devices.
func (s *Server) retryFailed(c *call) error {
	batchID, o, err := actionOf(c, id.Batch, "batch")
	if err != nil {
		return err
	}
	var expires attendance.Field[string]
	o.str("expires_at", &expires)
	if err := o.done(); err != nil {
		return err
	}
	var at time.Time
	if expires.Set {
		if at, err = time.Parse(time.RFC3339Nano, expires.Value); err != nil || !at.After(s.now()) {
			return invalidParam("expires_at", "expires_at must be an RFC 3339 instant in the future.")
		}
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		if _, err := commands.RetryFailed(c.ctx(), tx, c.acct.ID, batchID, at); err != nil {
			return nil, err
		}
		b, err := tx.Batch(c.ctx(), c.acct.ID, batchID)
		return one[batchView]{viewBatch(b)}, err
	})
}

// commandView is a command, with its progress and failed items.
type commandView struct {
	ID          string             `json:"id"`
	Object      string             `json:"object"`
	DeviceID    string             `json:"device_id"`
	BatchID     *string            `json:"batch_id"`
	Command     string             `json:"command"`
	Payload     json.RawMessage    `json:"payload"`
	Source      string             `json:"source"`
	Status      string             `json:"status"`
	Progress    event.Progress     `json:"progress"`
	ReturnCode  *int               `json:"return_code"`
	Error       *commandErrorView  `json:"error"`
	Errors      []commandItemError `json:"errors"`
	CreatedAt   string             `json:"created_at"`
	SentAt      *string            `json:"sent_at"`
	CompletedAt *string            `json:"completed_at"`
	ExpiresAt   string             `json:"expires_at"`
}

type commandErrorView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type commandItemError struct {
	Index       int     `json:"index"`
	BadgeNumber *string `json:"badge_number"`
	ReturnCode  int     `json:"return_code"`
	Code        string  `json:"code"`
	Message     string  `json:"message"`
}

func viewCommand(c attendance.Command) commandView {
	v := commandView{
		ID: c.ID, Object: "command", DeviceID: c.DeviceID, BatchID: optString(c.BatchID), Command: string(c.Kind),
		Payload: json.RawMessage(c.Payload), Source: c.Source, Status: string(c.Status),
		Progress:   event.Progress{Total: c.Total, Succeeded: c.Succeeded, Failed: c.Failed, Pending: c.Pending()},
		ReturnCode: c.ReturnCode, Errors: make([]commandItemError, 0, len(c.Errors)),
		CreatedAt: formatTime(c.CreatedAt), SentAt: optTime(c.SentAt), CompletedAt: optTime(c.CompletedAt), ExpiresAt: formatTime(c.ExpiresAt),
	}
	if len(v.Payload) == 0 {
		v.Payload = json.RawMessage(`{}`)
	}
	if c.ErrorCode != "" {
		v.Error = &commandErrorView{Code: c.ErrorCode, Message: c.ErrorMessage}
	}
	for _, e := range c.Errors {
		v.Errors = append(v.Errors, commandItemError{Index: e.Item, BadgeNumber: optString(e.Key), ReturnCode: e.ReturnCode, Code: e.Code, Message: e.Message})
	}
	return v
}

// batchView is a batch with its progress by device and by item, and each
// device's result.
type batchView struct {
	ID          string          `json:"id"`
	Object      string          `json:"object"`
	Command     string          `json:"command"`
	Payload     json.RawMessage `json:"payload"`
	Target      json.RawMessage `json:"target"`
	Status      string          `json:"status"`
	Progress    event.Progress  `json:"progress"`
	Items       event.Progress  `json:"items"`
	Devices     []commandView   `json:"devices"`
	CreatedAt   string          `json:"created_at"`
	CompletedAt *string         `json:"completed_at"`
}

func viewBatch(b attendance.Batch) batchView {
	v := viewBatchSummary(b)
	v.Devices = make([]commandView, 0, len(b.Commands))
	for _, c := range b.Commands {
		v.Devices = append(v.Devices, viewCommand(c))
	}
	v.Progress, v.Items = event.BatchProgress(b)
	return v
}

// viewBatchSummary is a batch without its devices (lists, which fill in
// the progress).
func viewBatchSummary(b attendance.Batch) batchView {
	status := "running"
	if !b.CompletedAt.IsZero() {
		status = "completed"
	}
	return batchView{
		ID: b.ID, Object: "batch", Command: string(b.Kind), Payload: json.RawMessage(b.Payload), Target: json.RawMessage(b.Target),
		Status: status, Progress: event.Progress{Total: b.Devices}, Devices: []commandView{},
		CreatedAt: formatTime(b.CreatedAt), CompletedAt: optTime(b.CompletedAt),
	}
}
