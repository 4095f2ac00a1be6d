package httpapi

import (
	"net/http"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

var deviceList = listSpec{
	sorts:   store.DeviceSorts,
	filters: store.DeviceFilters,
	enums:   map[string][]string{"status": {"pending", "online", "offline"}},
}

// deviceReadOnly are the device fields the server maintains.
var deviceReadOnly = []string{"id", "object", "status", "last_seen_at", "clock_offset_seconds", "firmware", "complete_through",
	"protocol", "push_version", "ip_address", "counts", "comm_key_set", "created_at", "updated_at"}

// decodeDevice reads a device create or update body.
func decodeDevice(body []byte, create bool) (attendance.DeviceInput, error) {
	var in attendance.DeviceInput
	o, err := parseBody(body)
	if err != nil {
		return in, err
	}
	o.str("serial_number", &in.SerialNumber)
	o.str("name", &in.Name)
	o.str("site", &in.Site)
	o.str("timezone", &in.Timezone)
	var mode attendance.Field[*string]
	o.nullableStr("direction_mode", &mode)
	if mode.Set {
		in.DirectionMode.Set = true
		if mode.Value != nil {
			m := attendance.DirectionMode(*mode.Value)
			in.DirectionMode.Value = &m
		}
	}
	o.str("verify_codes", &in.VerifyCodes)
	o.str("timezone_format", &in.TimezoneFormat)
	o.nullableInt("dedup_window_seconds", &in.DedupWindowSeconds)
	o.stringList("allowed_source_cidrs", &in.AllowedCIDRs)
	o.nullableStr("comm_key", &in.CommKey)
	o.readOnly(deviceReadOnly...)
	if err := o.done(); err != nil {
		return in, err
	}
	return in, in.Validate(create)
}

func (s *Server) createDevice(c *call) error {
	in, err := decodeDevice(c.body, true)
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusCreated, func(tx *store.Tx) (any, error) {
		d, err := tx.CreateDevice(c.ctx(), c.acct.ID, in)
		if err != nil {
			return nil, err
		}
		return one[deviceView]{viewDevice(d)}, s.replayHeld(c, tx, d)
	})
}

// pathID returns the {id} of the path when it is a well-formed ID of kind p,
// and otherwise the not-found error every unknown ID gets.
func pathID(c *call, p id.Prefix, kind string) (string, error) {
	v := c.r.PathValue("id")
	if !id.Valid(p, v) {
		return "", attendance.NotFound(kind, v)
	}
	return v, nil
}

func (s *Server) getDevice(c *call) error {
	devID, err := pathID(c, id.Device, "device")
	if err != nil {
		return err
	}
	d, err := s.store.Device(c.ctx(), c.acct.ID, devID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[deviceView]{viewDevice(d)})
}

func (s *Server) listDevices(c *call) error {
	lr, err := parseList(c.r.URL.Query(), deviceList)
	if err != nil {
		return err
	}
	page, err := s.store.ListDevices(c.ctx(), c.acct.ID, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewDevice))
}

func (s *Server) updateDevice(c *call) error {
	devID, err := pathID(c, id.Device, "device")
	if err != nil {
		return err
	}
	in, err := decodeDevice(c.body, false)
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		d, err := tx.UpdateDevice(c.ctx(), c.acct.ID, devID, in)
		if err != nil {
			return nil, err
		}
		if in.SerialNumber.Set {
			err = s.replayHeld(c, tx, d)
		}
		return one[deviceView]{viewDevice(d)}, err
	})
}

func (s *Server) deleteDevice(c *call) error {
	devID, err := pathID(c, id.Device, "device")
	if err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		return one[deletedView]{deletedView{ID: devID, Object: "device", Deleted: true}}, tx.DeleteDevice(c.ctx(), c.acct.ID, devID)
	})
}

// replayHeld processes, in the registering transaction, what the device
// uploaded before any account had registered its serial.
func (s *Server) replayHeld(c *call, tx *store.Tx, d attendance.Device) error {
	if s.held == nil {
		return nil
	}
	n, err := s.held.ReplayHeld(c.ctx(), tx, d)
	if n > 0 {
		s.log.InfoContext(c.ctx(), "processed uploads held for a newly registered serial", "device_id", d.ID, "uploads", n)
	}
	return err
}

var deviceUserList = listSpec{sorts: store.DeviceUserSorts}

func (s *Server) listDeviceUsers(c *call) error {
	devID, err := pathID(c, id.Device, "device")
	if err != nil {
		return err
	}
	lr, err := parseList(c.r.URL.Query(), deviceUserList)
	if err != nil {
		return err
	}
	if _, err := s.store.Device(c.ctx(), c.acct.ID, devID); err != nil {
		return err
	}
	page, err := s.store.ListDeviceUsers(c.ctx(), c.acct.ID, devID, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewDeviceUser))
}
