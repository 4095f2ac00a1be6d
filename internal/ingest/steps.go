// Package ingest turns raw attendance records into clean punches: every
// record of a batch goes through small steps (time, bad data, employee,
// duplicates, direction, method) and the results are stored with their
// events in the caller's transaction.
package ingest

import (
	"strconv"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// ToUTC converts a device's local wall time (carried in a UTC time.Time) to
// the instant it names in loc, DST-correct. In the hour a fall-back repeats,
// the wall time names two instants: the one nearest hint (the receive time)
// is taken when it is within two hours of it — a real-time upload — and the
// earlier one otherwise. A wall time that a spring-forward skips is read with
// the offset before the change.
func ToUTC(wall time.Time, loc *time.Location, hint time.Time) time.Time {
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	t := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), loc)
	var candidates []time.Time
	for _, shift := range []time.Duration{-2 * time.Hour, -time.Hour, -30 * time.Minute, 0, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		c := t.Add(shift)
		cy, cmo, cd := c.In(loc).Date()
		ch, cmi, cs := c.In(loc).Clock()
		if cy == y && cmo == mo && cd == d && ch == h && cmi == mi && cs == s {
			candidates = append(candidates, c)
		}
	}
	if len(candidates) == 0 {
		return t.UTC()
	}
	best := candidates[0] // the earliest: shifts are in increasing order
	if !hint.IsZero() {
		nearest := candidates[0]
		for _, c := range candidates[1:] {
			if absDuration(c.Sub(hint)) < absDuration(nearest.Sub(hint)) {
				nearest = c
			}
		}
		if absDuration(nearest.Sub(hint)) < 2*time.Hour {
			best = nearest
		}
	}
	return best.UTC()
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// CheckTime holds back impossible times: before the account's earliest date,
// more than MaxPunchAgeDays before receipt, or more than
// MaxPunchFutureHours after it (PRODUCT.md §8). It returns "" for a good time.
func CheckTime(t time.Time, localDate int, received time.Time, s attendance.Settings) (attendance.Reason, string) {
	switch {
	case localDate < s.EarliestPunchDate:
		return attendance.ReasonTimeTooOld, "The punch is dated before " + attendance.FormatDateInt(s.EarliestPunchDate) +
			": the device clock was probably reset (a weak clock battery, or a record from a firmware bug)."
	case t.Before(received.AddDate(0, 0, -s.MaxPunchAgeDays)):
		return attendance.ReasonTimeTooOld, "The punch is more than " + strconv.Itoa(s.MaxPunchAgeDays) + " days older than its upload."
	case t.After(received.Add(time.Duration(s.MaxPunchFutureHours) * time.Hour)):
		return attendance.ReasonTimeInFuture, "The punch is more than " + strconv.Itoa(s.MaxPunchFutureHours) +
			" hours later than its upload, after the device's clock offset was applied: its clock is wrong."
	}
	return "", ""
}

// WorkDate is the attendance day of a local time: the calendar date of the
// time less dayStart minutes, so a night shift that ends before dayStart
// belongs to the day it began.
func WorkDate(local time.Time, dayStartMinutes int) int {
	return attendance.DateInt(local.Add(-time.Duration(dayStartMinutes) * time.Minute))
}

// DirectionFromState reads a ZKTeco punch-state key: 0 check-in, 1
// check-out, 2 break-out, 3 break-in, 4 overtime-in, 5 overtime-out. Other
// values (255: no key pressed) say nothing.
func DirectionFromState(state *int) (attendance.Direction, bool) {
	if state == nil {
		return "", false
	}
	switch *state {
	case 0, 3, 4:
		return attendance.In, true
	case 1, 2, 5:
		return attendance.Out, true
	}
	return "", false
}

// InferDirection applies a day rule given how many accepted punches the
// employee already has earlier in the same attendance day:
// first_in_last_out makes the first in and the rest out; alternating goes
// in, out, in, ….
func InferDirection(mode attendance.DirectionMode, earlier int) attendance.Direction {
	if mode == attendance.DirectionAlternating {
		if earlier%2 == 0 {
			return attendance.In
		}
		return attendance.Out
	}
	if earlier == 0 {
		return attendance.In
	}
	return attendance.Out
}

// faceBitmask is the Security PUSH verifytype bitmask a face match reports.
const faceBitmask = "0000000000000010"

// MethodFromVerify maps a device verify code to a method, per the code
// family the device's firmware uses (the reference's §6.1).
func MethodFromVerify(verify string, family attendance.VerifyCodes) attendance.Method {
	if verify == "" {
		return attendance.MethodUnknown
	}
	if len(verify) == 16 {
		if verify == faceBitmask {
			return attendance.MethodFace
		}
		return attendance.MethodOther
	}
	n, err := strconv.Atoi(verify)
	if err != nil {
		return attendance.MethodOther
	}
	if family == attendance.VerifyLegacy {
		switch n {
		case 0:
			return attendance.MethodPassword
		case 1, 4, 5, 6, 8, 9:
			return attendance.MethodFingerprint
		case 2, 7, 17:
			return attendance.MethodCard
		case 3, 16:
			return attendance.MethodPIN
		case 15:
			return attendance.MethodFace
		}
		return attendance.MethodOther
	}
	switch {
	case n == 0:
		return attendance.MethodUnknown // "any": the device did not say which
	case n == 1, n == 5, n == 6, n == 8, n == 9, n == 10, n >= 12 && n <= 14:
		return attendance.MethodFingerprint
	case n == 2:
		return attendance.MethodPIN
	case n == 3:
		return attendance.MethodPassword
	case n == 4, n == 7, n == 11:
		return attendance.MethodCard
	case n >= 15 && n <= 20:
		return attendance.MethodFace
	case n >= 21 && n <= 24:
		return attendance.MethodFingerVein
	case n >= 25 && n <= 29:
		return attendance.MethodPalm
	}
	return attendance.MethodOther
}

// DeviceDedupKey identifies a device record for exact re-uploads: serial,
// PIN, device time, state and verify (PRODUCT.md §8).
func DeviceDedupKey(serial, pin, deviceTime string, state *int, verify string) string {
	st := ""
	if state != nil {
		st = strconv.Itoa(*state)
	}
	return "d|" + serial + "|" + pin + "|" + deviceTime + "|" + st + "|" + verify
}
