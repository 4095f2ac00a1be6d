package ingest

import (
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

func wall(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestToUTC(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	utc := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	for _, tc := range []struct {
		name string
		wall string
		loc  *time.Location
		hint time.Time
		want string
	}{
		{"winter", "2026-03-28 09:01:23", paris, time.Time{}, "2026-03-28T08:01:23Z"},
		{"summer", "2026-07-01 09:00:00", paris, time.Time{}, "2026-07-01T07:00:00Z"},
		{"half-hour zone", "2026-03-28 09:00:00", kolkata, time.Time{}, "2026-03-28T03:30:00Z"},
		// 2026-10-25 02:30 happens twice in Paris: at 00:30Z (CEST) and 01:30Z (CET).
		{"fall back, backlog: the first", "2026-10-25 02:30:00", paris, utc("2026-10-26T12:00:00Z"), "2026-10-25T00:30:00Z"},
		{"fall back, real-time: the nearest", "2026-10-25 02:30:00", paris, utc("2026-10-25T01:30:02Z"), "2026-10-25T01:30:00Z"},
		{"fall back, real-time first pass", "2026-10-25 02:30:00", paris, utc("2026-10-25T00:30:05Z"), "2026-10-25T00:30:00Z"},
		// 2026-03-29 02:30 does not exist in Paris: read with the offset before the change.
		{"spring forward gap", "2026-03-29 02:30:00", paris, time.Time{}, "2026-03-29T01:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ToUTC(wall(tc.wall), tc.loc, tc.hint); !got.Equal(utc(tc.want)) {
				t.Fatalf("ToUTC(%s) = %v, want %s", tc.wall, got, tc.want)
			}
		})
	}
}

func TestCheckTime(t *testing.T) {
	s := attendance.DefaultSettings()
	recv := time.Date(2026, 3, 28, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want attendance.Reason
	}{
		{recv.Add(-time.Hour), ""},
		{recv.Add(23 * time.Hour), ""},
		{recv.Add(25 * time.Hour), attendance.ReasonTimeInFuture},
		{recv.AddDate(0, 0, -399), ""},
		{recv.AddDate(0, 0, -401), attendance.ReasonTimeTooOld},
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), attendance.ReasonTimeTooOld},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), attendance.ReasonTimeTooOld},
		{time.Date(2049, 1, 1, 0, 0, 0, 0, time.UTC), attendance.ReasonTimeInFuture},
	} {
		if got, _ := CheckTime(tc.at, attendance.DateInt(tc.at), recv, s); got != tc.want {
			t.Errorf("CheckTime(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
	// The earliest date is compared in local time and is settable.
	s.EarliestPunchDate = 20260101
	at := time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)
	if got, _ := CheckTime(at, 20251231, recv, s); got != attendance.ReasonTimeTooOld {
		t.Errorf("before the earliest date: %q", got)
	}
}

func TestWorkDate(t *testing.T) {
	local := time.Date(2026, 3, 28, 3, 30, 0, 0, time.UTC)
	if got := WorkDate(local, 0); got != 20260328 {
		t.Fatalf("WorkDate at midnight start = %d", got)
	}
	if got := WorkDate(local, 4*60); got != 20260327 {
		t.Fatalf("03:30 with a 04:00 day start belongs to the previous day, got %d", got)
	}
}

func TestDirection(t *testing.T) {
	for state, want := range map[int]attendance.Direction{0: attendance.In, 1: attendance.Out, 2: attendance.Out, 3: attendance.In, 4: attendance.In, 5: attendance.Out} {
		if got, ok := DirectionFromState(&state); !ok || got != want {
			t.Errorf("state %d = %q, want %q", state, got, want)
		}
	}
	s255 := 255
	if _, ok := DirectionFromState(&s255); ok {
		t.Error("state 255 gave a direction")
	}
	if _, ok := DirectionFromState(nil); ok {
		t.Error("no state gave a direction")
	}
	fio := []attendance.Direction{attendance.In, attendance.Out, attendance.Out, attendance.Out}
	alt := []attendance.Direction{attendance.In, attendance.Out, attendance.In, attendance.Out}
	for earlier := range 4 {
		if got := InferDirection(attendance.DirectionFirstInLastOut, earlier); got != fio[earlier] {
			t.Errorf("first_in_last_out after %d = %q", earlier, got)
		}
		if got := InferDirection(attendance.DirectionAlternating, earlier); got != alt[earlier] {
			t.Errorf("alternating after %d = %q", earlier, got)
		}
	}
}

func TestMethodFromVerify(t *testing.T) {
	for _, tc := range []struct {
		verify string
		family attendance.VerifyCodes
		want   attendance.Method
	}{
		{"1", attendance.VerifyStandard, attendance.MethodFingerprint},
		{"1", attendance.VerifyLegacy, attendance.MethodFingerprint},
		{"4", attendance.VerifyStandard, attendance.MethodCard},
		{"2", attendance.VerifyLegacy, attendance.MethodCard},
		{"0", attendance.VerifyLegacy, attendance.MethodPassword},
		{"0", attendance.VerifyStandard, attendance.MethodUnknown},
		{"3", attendance.VerifyStandard, attendance.MethodPassword},
		{"3", attendance.VerifyLegacy, attendance.MethodPIN},
		{"15", attendance.VerifyStandard, attendance.MethodFace},
		{"25", attendance.VerifyStandard, attendance.MethodPalm},
		{"21", attendance.VerifyStandard, attendance.MethodFingerVein},
		{"0000000000000010", attendance.VerifyStandard, attendance.MethodFace},
		{"200", attendance.VerifyStandard, attendance.MethodOther},
		{"", attendance.VerifyStandard, attendance.MethodUnknown},
		{"x", attendance.VerifyStandard, attendance.MethodOther},
	} {
		if got := MethodFromVerify(tc.verify, tc.family); got != tc.want {
			t.Errorf("MethodFromVerify(%q, %s) = %q, want %q", tc.verify, tc.family, got, tc.want)
		}
	}
}
