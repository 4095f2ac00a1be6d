package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/ingest"
	"github.com/punchconnect/punchconnect/internal/store"
)

// MaxPunchBatch is the most punches one POST /v1/punches takes.
const MaxPunchBatch = 1000

// localTimeLayouts are the forms of a timestamp without an offset: the
// device's local wall time.
var localTimeLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// punchItem is one decoded item of POST /v1/punches.
type punchItem struct {
	deviceID, serial string
	input            ingest.Input
}

// decodePunch reads one punch of a batch.
func decodePunch(raw json.RawMessage, i int) (punchItem, error) {
	var it punchItem
	prefix := fmt.Sprintf("punches[%d].", i)
	o, err := parseObject(raw, prefix)
	if err != nil {
		return it, err
	}
	var devID, serial, badge, ts, direction, method attendance.Field[string]
	var confidence attendance.Field[*float64]
	var ext attendance.Field[*string]
	o.str("device_id", &devID)
	o.str("serial_number", &serial)
	o.str("badge_number", &badge)
	o.str("timestamp", &ts)
	o.str("direction", &direction)
	o.str("method", &method)
	o.nullableFloat("confidence", &confidence)
	o.nullableStr("external_id", &ext)
	if err := o.done(); err != nil {
		return it, err
	}
	fail := func(code attendance.Code, param, format string, args ...any) (punchItem, error) {
		return it, attendance.Errorf(code, prefix+param, format, args...)
	}
	switch {
	case devID.Set == serial.Set:
		return fail(attendance.CodeMissingParameter, "device_id", "Give the device as device_id or serial_number (one of them).")
	case !badge.Set:
		return fail(attendance.CodeMissingParameter, "badge_number", "badge_number is required.")
	case !ts.Set:
		return fail(attendance.CodeMissingParameter, "timestamp", "timestamp is required: an RFC 3339 instant (2026-03-28T09:01:23+01:00) or the device's local time (2026-03-28T09:01:23).")
	}
	if err := attendance.ValidateBadge(prefix+"badge_number", badge.Value); err != nil {
		return it, err
	}
	it.deviceID = devID.Value
	if serial.Set {
		if it.serial, err = attendance.NormalizeSerial(prefix+"serial_number", serial.Value); err != nil {
			return it, err
		}
	}
	in := ingest.Input{Badge: badge.Value, Raw: string(raw), Confidence: confidence.Value, ExternalID: ext.Value}
	if t, err := time.Parse(time.RFC3339Nano, ts.Value); err == nil {
		in.Instant = t
		in.DeviceTime = ts.Value
	} else {
		for _, layout := range localTimeLayouts {
			if w, err := time.Parse(layout, ts.Value); err == nil {
				in.Wall, in.DeviceTime = w, ts.Value
				break
			}
		}
		if in.Wall.IsZero() {
			return fail(attendance.CodeInvalidParameter, "timestamp", "timestamp %q is neither an RFC 3339 instant (2026-03-28T09:01:23+01:00) nor a local time (2026-03-28T09:01:23).", ts.Value)
		}
	}
	if direction.Set {
		if direction.Value != string(attendance.In) && direction.Value != string(attendance.Out) {
			return fail(attendance.CodeInvalidParameter, "direction", "direction must be in or out; leave it out to let the account's rules decide.")
		}
		in.Direction = attendance.Direction(direction.Value)
	}
	if method.Set {
		valid := false
		for _, m := range attendance.Methods {
			valid = valid || string(m) == method.Value
		}
		if !valid {
			return fail(attendance.CodeInvalidParameter, "method", "method must be one of fingerprint, face, card, password, pin, palm, finger_vein, other or unknown.")
		}
		in.Method = attendance.Method(method.Value)
	}
	if c := confidence.Value; c != nil && (*c < 0 || *c > 1) {
		return fail(attendance.CodeInvalidParameter, "confidence", "confidence must be between 0 and 1, or null.")
	}
	if e := ext.Value; e != nil {
		if *e == "" {
			return fail(attendance.CodeInvalidParameter, "external_id", "external_id must not be empty; leave it out or send null.")
		}
		if err := attendance.ValidateText(prefix+"external_id", *e, attendance.MaxExternalIDLength); err != nil {
			return it, err
		}
	}
	it.input = in
	return it, nil
}

// apiDedupKey makes API punches idempotent: by external_id, else by device,
// badge and time.
func apiDedupKey(deviceID string, in ingest.Input) string {
	if in.ExternalID != nil {
		return "x|" + *in.ExternalID
	}
	if !in.Instant.IsZero() {
		return "a|" + deviceID + "|" + in.Badge + "|" + in.Instant.UTC().Format(time.RFC3339Nano)
	}
	return "a|" + deviceID + "|" + in.Badge + "|L" + in.Wall.Format("2006-01-02T15:04:05.999999999")
}

type punchResult struct {
	Index  int        `json:"index"`
	Status string     `json:"status"`
	Punch  any        `json:"punch,omitempty"`
	Error  *errorBody `json:"error,omitempty"`
}

type punchSummary struct {
	Accepted  int `json:"accepted"`
	Duplicate int `json:"duplicate"`
	Rejected  int `json:"rejected"`
	Errors    int `json:"errors"`
}

type punchesResponse struct {
	Data    []punchResult `json:"data"`
	Summary punchSummary  `json:"summary"`
}

// postPunches ingests punches from terminals and gateways that do not speak
// ZKTeco PUSH: the same normalization, per-item results, idempotent by
// external_id (or device, badge and time). Like device traffic it is never
// rate limited.
func (s *Server) postPunches(c *call) error {
	o, err := parseBody(c.body)
	if err != nil {
		return err
	}
	raw, present := o.array("punches")
	if err := o.done(); err != nil {
		return err
	}
	if !present {
		return attendance.Errorf(attendance.CodeMissingParameter, "punches",
			`punches is required: an array such as {"punches": [{"serial_number": "BKRK233600045", "badge_number": "1042", "timestamp": "2026-03-28T09:01:23+01:00"}]}.`)
	}
	if len(raw) > MaxPunchBatch {
		return attendance.Errorf(attendance.CodeBatchTooLarge, "punches", "A batch holds at most %d punches; this one has %d.", MaxPunchBatch, len(raw))
	}
	out := punchesResponse{Data: make([]punchResult, len(raw))}
	items := make([]punchItem, len(raw))
	valid := make([]bool, len(raw))
	for i, r := range raw {
		out.Data[i].Index = i
		it, err := decodePunch(r, i)
		if err != nil {
			out.Data[i].Status, out.Data[i].Error = "error", s.itemError(err)
			continue
		}
		items[i], valid[i] = it, true
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		res := punchesResponse{Data: append([]punchResult(nil), out.Data...)}
		acct, err := tx.Account(c.ctx(), c.acct.ID)
		if err != nil {
			return nil, err
		}
		// Resolve devices, then process each device's punches in request order.
		resolved := map[string]attendance.Device{} // by "id:…" and "sn:…"
		devices := map[string]attendance.Device{}  // by device ID
		var order []string
		byDevice := map[string][]int{}
		for i := range items {
			if !valid[i] {
				continue
			}
			d, err := s.punchDevice(c, tx, items[i], resolved)
			if err != nil {
				if _, ok := attendance.AsError(err); ok {
					res.Data[i].Status, res.Data[i].Error = "error", s.itemError(prefixParam(err, fmt.Sprintf("punches[%d].", i)))
					continue
				}
				return nil, err
			}
			devices[d.ID] = d
			items[i].input.DedupKey = apiDedupKey(d.ID, items[i].input)
			if _, seen := byDevice[d.ID]; !seen {
				order = append(order, d.ID)
			}
			byDevice[d.ID] = append(byDevice[d.ID], i)
		}
		now := tx.Now
		for _, devID := range order {
			idx := byDevice[devID]
			inputs := make([]ingest.Input, len(idx))
			for j, i := range idx {
				inputs[j] = items[i].input
			}
			results, err := ingest.Process(c.ctx(), tx, ingest.Batch{
				Device: devices[devID], Settings: acct.Settings, Source: attendance.SourceAPI, ReceivedAt: now, Inputs: inputs,
			})
			if err != nil {
				return nil, err
			}
			for j, r := range results {
				item := &res.Data[idx[j]]
				if s.records != nil {
					s.records.WithLabelValues([...]string{"accepted", "duplicate", "rejected"}[r.Outcome], string(r.Punch.Reason)).Inc()
				}
				p := r.Punch
				switch r.Outcome {
				case ingest.Accepted:
					item.Status = "accepted"
				case ingest.Rejected:
					item.Status = "rejected"
				case ingest.Duplicate:
					item.Status = "duplicate"
					if p, err = tx.PunchByDedupKey(c.ctx(), acct.ID, inputs[j].DedupKey); err != nil {
						return nil, err
					}
				}
				item.Punch = punchRecordView(p)
			}
		}
		for _, d := range res.Data {
			switch d.Status {
			case "accepted":
				res.Summary.Accepted++
			case "duplicate":
				res.Summary.Duplicate++
			case "rejected":
				res.Summary.Rejected++
			default:
				res.Summary.Errors++
			}
		}
		return res, nil
	})
}

func deviceNotFound(deviceID string) error {
	return attendance.Errorf(attendance.CodeResourceNotFound, "device_id", "No device with id %q exists in this account.", deviceID)
}

// punchDevice resolves the device of an item among the account's devices.
func (s *Server) punchDevice(c *call, tx *store.Tx, it punchItem, cache map[string]attendance.Device) (attendance.Device, error) {
	key := "id:" + it.deviceID
	if it.serial != "" {
		key = "sn:" + it.serial
	}
	if d, ok := cache[key]; ok {
		return d, nil
	}
	var d attendance.Device
	var err error
	if it.serial != "" {
		var found bool
		d, found, err = tx.DeviceBySerial(c.ctx(), it.serial)
		if err == nil && (!found || d.AccountID != c.acct.ID) {
			err = attendance.Errorf(attendance.CodeResourceNotFound, "serial_number", "No device with serial number %s is registered in this account.", it.serial)
		}
	} else if !id.Valid(id.Device, it.deviceID) {
		err = deviceNotFound(it.deviceID)
	} else if d, err = tx.Device(c.ctx(), c.acct.ID, it.deviceID); attendance.ErrorCode(err) == attendance.CodeResourceNotFound {
		err = deviceNotFound(it.deviceID)
	}
	if err != nil {
		return d, err
	}
	cache[key] = d
	cache["id:"+d.ID] = d
	return d, nil
}
