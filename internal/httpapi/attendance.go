package httpapi

import (
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/ingest"
	"github.com/punchconnect/punchconnect/internal/store"
)

var attendanceList = listSpec{
	sorts: store.PunchSorts,
	params: []string{"start_date", "end_date", "timezone", "device_id", "employee_id", "badge_number", "site", "direction",
		"received_start", "received_end"},
}

var rejectedList = listSpec{
	sorts:  store.RejectedSorts,
	params: []string{"reason", "device_id", "badge_number", "received_start", "received_end"},
}

var dateOnly = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// dateBound reads start_date or end_date: a calendar date, or an exact
// RFC 3339 instant.
func dateBound(q url.Values, name string) (date int, instant time.Time, err error) {
	v := q.Get(name)
	if v == "" {
		return 0, time.Time{}, nil
	}
	if dateOnly.MatchString(v) {
		d, perr := time.Parse(time.DateOnly, v)
		if perr != nil {
			return 0, time.Time{}, invalidParam(name, "%s %q is not a date: use YYYY-MM-DD, such as 2026-03-28.", name, v)
		}
		return attendance.DateInt(d), time.Time{}, nil
	}
	t, perr := time.Parse(time.RFC3339Nano, v)
	if perr != nil {
		return 0, time.Time{}, invalidParam(name, "%s %q is neither a date (2026-03-28) nor an RFC 3339 instant (2026-03-28T09:00:00+01:00).", name, v)
	}
	return 0, t, nil
}

func instantParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, invalidParam(name, "%s %q is not an RFC 3339 instant such as 2026-03-28T09:00:00Z.", name, v)
	}
	return t, nil
}

// attendanceQuery reads the filters of GET /v1/attendance (PRODUCT.md §8):
// start_date and end_date are local calendar dates of the punch in its
// device's zone — or in the zone given as timezone — both inclusive; RFC
// 3339 instants are exact.
func attendanceQuery(q url.Values) (store.PunchQuery, error) {
	pq := store.PunchQuery{
		Status: attendance.PunchAccepted, DeviceID: q.Get("device_id"), EmployeeID: q.Get("employee_id"),
		BadgeNumber: q.Get("badge_number"), Site: q.Get("site"), Direction: q.Get("direction"),
	}
	if d := pq.Direction; d != "" && d != string(attendance.In) && d != string(attendance.Out) {
		return pq, invalidParam("direction", "direction must be in or out; got %q.", d)
	}
	var loc *time.Location
	if tz := q.Get("timezone"); tz != "" {
		var err error
		if loc, err = attendance.LoadTimezone("timezone", tz); err != nil {
			return pq, err
		}
	}
	startDate, startAt, err := dateBound(q, "start_date")
	if err != nil {
		return pq, err
	}
	endDate, endAt, err := dateBound(q, "end_date")
	if err != nil {
		return pq, err
	}
	switch {
	case startDate != 0 && loc != nil:
		pq.From = time.Date(startDate/10000, time.Month(startDate/100%100), startDate%100, 0, 0, 0, 0, loc)
	case startDate != 0:
		pq.LocalFrom = startDate
	default:
		pq.From = startAt
	}
	switch {
	case endDate != 0 && loc != nil:
		pq.To = time.Date(endDate/10000, time.Month(endDate/100%100), endDate%100+1, 0, 0, 0, 0, loc).Add(-time.Microsecond)
	case endDate != 0:
		pq.LocalTo = endDate
	default:
		pq.To = endAt
	}
	if (pq.LocalFrom != 0 && pq.LocalTo != 0 && pq.LocalTo < pq.LocalFrom) || (!pq.From.IsZero() && !pq.To.IsZero() && pq.To.Before(pq.From)) {
		return pq, invalidParam("end_date", "end_date is before start_date.")
	}
	if pq.ReceivedFrom, err = instantParam(q, "received_start"); err != nil {
		return pq, err
	}
	if pq.ReceivedTo, err = instantParam(q, "received_end"); err != nil {
		return pq, err
	}
	return pq, nil
}

func (s *Server) listAttendance(c *call) error {
	q := c.r.URL.Query()
	lr, err := parseList(q, attendanceList)
	if err != nil {
		return err
	}
	pq, err := attendanceQuery(q)
	if err != nil {
		return err
	}
	page, err := s.store.ListPunches(c.ctx(), c.acct.ID, pq, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewPunch))
}

func (s *Server) getAttendance(c *call) error {
	p, err := s.punchOfStatus(c, attendance.PunchAccepted)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[punchView]{viewPunch(p)})
}

// punchOfStatus reads the punch of the path, which must have status.
func (s *Server) punchOfStatus(c *call, status attendance.PunchStatus) (attendance.Punch, error) {
	pid, err := pathID(c, id.Punch, "punch")
	if err != nil {
		return attendance.Punch{}, err
	}
	p, err := s.store.Punch(c.ctx(), c.acct.ID, pid)
	if err != nil {
		return p, err
	}
	if p.Status != status {
		return p, attendance.NotFound(map[attendance.PunchStatus]string{attendance.PunchAccepted: "accepted punch", attendance.PunchRejected: "rejected punch"}[status], pid)
	}
	return p, nil
}

func (s *Server) listRejected(c *call) error {
	q := c.r.URL.Query()
	lr, err := parseList(q, rejectedList)
	if err != nil {
		return err
	}
	pq := store.PunchQuery{Status: attendance.PunchRejected, Reason: q.Get("reason"), DeviceID: q.Get("device_id"), BadgeNumber: q.Get("badge_number")}
	if r := pq.Reason; r != "" && !validReason(r) {
		return invalidParam("reason", "reason must be one of malformed, time_too_old, time_in_future, unregistered_badge, inactive_employee or duplicate_window; got %q.", r)
	}
	if pq.ReceivedFrom, err = instantParam(q, "received_start"); err != nil {
		return err
	}
	if pq.ReceivedTo, err = instantParam(q, "received_end"); err != nil {
		return err
	}
	page, err := s.store.ListPunches(c.ctx(), c.acct.ID, pq, lr.params)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, listOf(lr, page, viewRejected))
}

func validReason(r string) bool {
	for _, x := range attendance.Reasons {
		if string(x) == r {
			return true
		}
	}
	return false
}

func (s *Server) getRejected(c *call) error {
	p, err := s.punchOfStatus(c, attendance.PunchRejected)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, one[rejectedView]{viewRejected(p)})
}

// releaseRejected delivers one held-back record: it becomes a punch, with
// its event, whatever it was held for — once its badge is registered.
func (s *Server) releaseRejected(c *call) error {
	pid, err := pathID(c, id.Punch, "rejected punch")
	if err != nil {
		return err
	}
	if o, err := parseBody(c.body); err != nil {
		return err
	} else if err := o.done(); err != nil {
		return err
	}
	return s.mutate(c, http.StatusOK, func(tx *store.Tx) (any, error) {
		p, err := tx.RejectedPunch(c.ctx(), c.acct.ID, pid)
		if err != nil {
			return nil, err
		}
		if p.Status != attendance.PunchRejected {
			return nil, attendance.NotFound("rejected punch", pid)
		}
		acct, err := tx.Account(c.ctx(), c.acct.ID)
		if err != nil {
			return nil, err
		}
		released, err := ingest.Release(c.ctx(), tx, acct.Settings, []attendance.Punch{p}, true)
		if err != nil {
			return nil, err
		}
		return one[punchView]{viewPunch(released[0])}, nil
	})
}
