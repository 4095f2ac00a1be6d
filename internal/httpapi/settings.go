package httpapi

import (
	"net/http"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

func (s *Server) getSettings(c *call) error {
	a, err := s.store.Account(c.ctx(), c.acct.ID)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[settingsView]{viewSettings(a.Settings)})
}

func (s *Server) updateSettings(c *call) error {
	o, err := parseBody(c.body)
	if err != nil {
		return err
	}
	var in attendance.SettingsInput
	o.str("timezone", &in.Timezone)
	o.str("direction_mode", &in.DirectionMode)
	o.str("day_start", &in.DayStart)
	o.integer("dedup_window_seconds", &in.DedupWindowSeconds)
	o.str("earliest_punch_date", &in.EarliestPunchDate)
	o.integer("max_punch_age_days", &in.MaxPunchAgeDays)
	o.integer("max_punch_future_hours", &in.MaxPunchFutureHours)
	o.boolean("auto_sync_employees", &in.AutoSyncEmployees)
	o.readOnly("object")
	if err := o.done(); err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		st, err := tx.UpdateSettings(c.ctx(), c.acct.ID, in)
		return one[settingsView]{viewSettings(st)}, err
	})
}
