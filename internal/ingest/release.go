package ingest

import (
	"context"
	"slices"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/event"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Release delivers held-back punches of one account, oldest first. An
// explicit release (POST …/release) accepts the record whatever it was held
// for, once its badge is registered; an automatic one (the badge was just
// registered) applies the usual checks, and a record that now fails another
// one stays held with that reason. It returns the punches it accepted.
func Release(ctx context.Context, tx *store.Tx, settings attendance.Settings, held []attendance.Punch, explicit bool) ([]attendance.Punch, error) {
	if len(held) == 0 {
		return nil, nil
	}
	held = slices.Clone(held)
	slices.SortStableFunc(held, func(a, b attendance.Punch) int { return a.Time.Compare(b.Time) })
	accountID := held[0].AccountID
	var badges []string
	lo, hi := held[0].Time, held[len(held)-1].Time
	for _, p := range held {
		badges = append(badges, p.BadgeNumber)
	}
	employees, err := tx.EmployeesByBadgeLocked(ctx, accountID, badges)
	if err != nil {
		return nil, err
	}
	var empIDs []string
	for _, e := range employees {
		empIDs = append(empIDs, e.ID)
	}
	hist := history{}
	if len(empIDs) > 0 {
		// Held records are released in time order, each counting the earlier
		// punches of its day (at most a day and a DST hour back) and the
		// duplicate window ahead.
		refs, err := tx.AcceptedPunches(ctx, accountID, empIDs, lo.Add(-25*time.Hour), hi.Add(time.Duration(attendance.MaxDedupWindowSeconds)*time.Second))
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			hist[r.EmployeeID] = append(hist[r.EmployeeID], r)
		}
	}
	devices := map[string]attendance.Device{}
	var released []attendance.Punch
	var events []attendance.Event
	for _, p := range held {
		if !p.Reason.Releasable() {
			if explicit {
				return nil, attendance.Errorf(attendance.CodeNotReleasable, "id",
					"Punch %s cannot be released: the device sent a record that could not be read, so it has no time to deliver.", p.ID)
			}
			continue
		}
		emp, ok := employees[p.BadgeNumber]
		if !ok {
			if explicit {
				return nil, attendance.Errorf(attendance.CodeBadgeNotRegistered, "id",
					"No employee of this account has badge number %s yet. Create the employee first (the record is then released on its own).", p.BadgeNumber)
			}
			continue
		}
		dev, ok := devices[p.DeviceID]
		if !ok {
			if dev, err = tx.DeviceAny(ctx, accountID, p.DeviceID); err != nil {
				return nil, err
			}
			devices[p.DeviceID] = dev
		}
		p.EmployeeID = &emp.ID
		if !explicit {
			window := dev.DedupWindow(settings)
			prev, dup := hist.nearOnDevice(emp.ID, p.DeviceID, p.Time, window)
			switch {
			case !emp.Active:
				p.Reason, p.Detail = attendance.ReasonInactiveEmployee, "Employee "+emp.ID+" is inactive. Reactivate the employee and release the record to deliver it."
			case dup && window > 0:
				p.Reason, p.Detail = attendance.ReasonDuplicateWindow, "A punch by the same employee on the same device at "+event.FormatTime(prev.Time)+" is within the duplicate window."
			}
			if p.Reason != attendance.ReasonUnregisteredBadge {
				if err := tx.UpdateRejection(ctx, &p); err != nil {
					return nil, err
				}
				continue
			}
		}
		decideDirection(&p, Input{State: p.State}, dev.Direction(settings), hist)
		p.Status, p.Reason, p.Detail, p.ReleasedAt = attendance.PunchAccepted, "", "", tx.Now
		ev := event.Punch(p, event.Ref(dev), attendance.EmployeeRef{ID: emp.ID, BadgeNumber: emp.BadgeNumber, Name: emp.Name}, tx.Now)
		p.EventID = &ev.ID
		if err := tx.AcceptPunch(ctx, &p); err != nil {
			return nil, err
		}
		hist.add(store.PunchRef{EmployeeID: emp.ID, DeviceID: p.DeviceID, Time: p.Time, WorkDate: p.WorkDate})
		p.Employee = &attendance.EmployeeRef{ID: emp.ID, BadgeNumber: emp.BadgeNumber, Name: emp.Name}
		events = append(events, ev)
		released = append(released, p)
	}
	return released, tx.InsertEvents(ctx, events)
}

// ReleaseBadges releases, for each badge just registered in the account, the
// records held back because it was not. Employee creation calls it in its
// own transaction.
func ReleaseBadges(ctx context.Context, tx *store.Tx, accountID string, badges []string) (int, error) {
	var held []attendance.Punch
	for _, b := range badges {
		ps, err := tx.HeldForBadge(ctx, accountID, b)
		if err != nil {
			return 0, err
		}
		held = append(held, ps...)
	}
	if len(held) == 0 {
		return 0, nil
	}
	acct, err := tx.Account(ctx, accountID)
	if err != nil {
		return 0, err
	}
	released, err := Release(ctx, tx, acct.Settings, held, false)
	return len(released), err
}
