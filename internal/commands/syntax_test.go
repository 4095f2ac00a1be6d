package commands

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

func ptr[T any](v T) *T { return &v }

func TestDialects(t *testing.T) {
	att := attendance.Device{Protocol: "attendance"}
	sec := attendance.Device{Protocol: "security"}
	u := user{pin: "1042", name: ptr("Sarah Chen"), card: ptr("123"), privilege: ptr(14), group: ptr("1"), password: ptr("99")}
	for _, c := range []struct{ got, want string }{
		{syncLine(att, u), "DATA UPDATE USERINFO PIN=1042\tName=Sarah Chen\tPri=14\tPasswd=99\tCard=123\tGrp=1"},
		{syncLine(sec, u), "DATA UPDATE user Pin=1042\tName=Sarah Chen\tPrivilege=14\tCardNo=123\tPassword=99\tGroup=1"},
		// Only what is known is sent: nothing on the device is cleared.
		{syncLine(att, user{pin: "7"}), "DATA UPDATE USERINFO PIN=7"},
		{deleteLine(att, "7"), "DATA DELETE USERINFO PIN=7"},
		{deleteLine(sec, "7"), "DATA DELETE user Pin=7"},
		{unlockLine(att, 5), "AC_UNLOCK"},
		{unlockLine(sec, 5), "CONTROL DEVICE 01010105"},
		{unlockLine(sec, 254), "CONTROL DEVICE 010101FE"},
		{setTimeLine(att), "CHECK"},
		{setTimeLine(sec), SetTimeLine},
		{infoLine(att), "INFO"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	fast := attendance.Device{ClockOffsetSeconds: ptr(300)}
	start := time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)
	if got := reuploadLine(fast, paris, start, start.Add(time.Hour)); got != "DATA QUERY ATTLOG StartTime=2026-03-28 09:05:00\tEndTime=2026-03-28 10:05:00" {
		t.Errorf("reupload in the device's zone and clock: %q", got)
	}
}

func TestDeviceName(t *testing.T) {
	for in, want := range map[string]string{
		"Sarah Chen":                            "Sarah Chen",
		"Ana\tMaria\r\nLopez":                   "Ana Maria Lopez",
		"Maria de los Angeles Fernandez Garcia": "Maria de los Angeles Fer",
		"Zoë Ångström-Øvergaard Jr":             "Zoë Ångström-Øvergaa", // 24 bytes, not cut inside a letter
	} {
		if got := deviceName(in, false); got != want || len(got) > maxNameBytes {
			t.Errorf("deviceName(%q) = %q, want %q", in, got, want)
		}
	}
	// Chinese devices: 24 bytes of GB18030 (2 per character), not of UTF-8.
	name := strings.Repeat("张", 15)
	got := deviceName(name, true)
	enc, _ := simplifiedchinese.GB18030.NewEncoder().String(got)
	if got != strings.Repeat("张", 12) || len(enc) != 24 {
		t.Errorf("Chinese name %q (%d bytes encoded)", got, len(enc))
	}
}

func TestSucceeded(t *testing.T) {
	for _, c := range []struct {
		kind attendance.CommandKind
		code int
		ok   bool
	}{
		{attendance.CommandSyncEmployees, 0, true},
		{attendance.CommandSyncEmployees, -10, false},
		{attendance.CommandDeleteEmployees, -10, true}, // already absent
		{attendance.CommandReupload, -1, true},         // nothing in the range
		{attendance.CommandReupload, 42, true},         // a record count
		{attendance.CommandUnlockDoor, -1002, false},
	} {
		if got := Succeeded(c.kind, attendance.CommandLine{}, c.code); got != c.ok {
			t.Errorf("%s %d: %v", c.kind, c.code, got)
		}
	}
}
