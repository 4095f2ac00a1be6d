// Package commands turns typed device commands into the PUSH protocol's
// command lines, queues them (one line per item) for devices to fetch on
// their next poll, and finishes them when devices report results: events,
// batches that fan one operation out to many devices, and the automatic
// sync of employees. See docs/ARCHITECTURE.md.
package commands

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// Security PUSH (3.x) devices speak another command dialect.
func security(d attendance.Device) bool { return d.Protocol == "security" }

// Chinese reports whether a device takes names in GB18030 (its language is
// simplified or traditional Chinese).
func Chinese(d attendance.Device) bool { return d.Language == "83" || d.Language == "84" }

// maxNameBytes is the size of a device's name field.
const maxNameBytes = 24

// deviceName cleans a name for a device: no tabs, line breaks or other
// control characters (they would split the command), and at most 24 bytes
// in the device's encoding, cut at a character boundary.
func deviceName(name string, chinese bool) string {
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	size := func(s string) int {
		if chinese {
			if b, err := simplifiedchinese.GB18030.NewEncoder().String(s); err == nil {
				return len(b)
			}
		}
		return len(s)
	}
	for size(name) > maxNameBytes {
		_, n := utf8.DecodeLastRuneInString(name)
		name = strings.TrimSpace(name[:len(name)-n])
	}
	return name
}

// user is an employee record as a sync writes it: only the fields known.
type user struct {
	pin       string
	name      *string
	card      *string
	privilege *int
	group     *string
	password  *string
}

// Device privileges: 0 an ordinary user, 14 the super administrator.
const (
	privilegeUser  = 0
	privilegeAdmin = 14
)

// syncLine writes a user to the device: DATA UPDATE, never USER ADD (which
// firmware refuses), with the fields known and no others, so nothing on the
// device is cleared by a field sent empty.
func syncLine(d attendance.Device, u user) string {
	// The two dialects name the same fields differently, and order the
	// last three differently.
	type field struct {
		key string
		v   *string
	}
	command, pinKey, priKey := "DATA UPDATE USERINFO ", "PIN", "Pri"
	last := []field{{"Passwd", u.password}, {"Card", u.card}, {"Grp", u.group}}
	if security(d) {
		command, pinKey, priKey = "DATA UPDATE user ", "Pin", "Privilege"
		last = []field{{"CardNo", u.card}, {"Password", u.password}, {"Group", u.group}}
	}
	kv := []string{pinKey + "=" + u.pin}
	if u.name != nil {
		kv = append(kv, "Name="+deviceName(*u.name, Chinese(d)))
	}
	if u.privilege != nil {
		kv = append(kv, priKey+"="+strconv.Itoa(*u.privilege))
	}
	for _, f := range last {
		if f.v != nil {
			kv = append(kv, f.key+"="+*f.v)
		}
	}
	return command + strings.Join(kv, "\t")
}

// deleteLine removes a user, with their templates and photo.
func deleteLine(d attendance.Device, pin string) string {
	if security(d) {
		return "DATA DELETE user Pin=" + pin
	}
	return "DATA DELETE USERINFO PIN=" + pin
}

// unlockLine opens the door. Security PUSH takes the seconds (CONTROL
// DEVICE 01 door 01 lock, DD seconds, FF staying open); attendance
// firmware opens it for its own lock time (option LockOn).
func unlockLine(d attendance.Device, seconds int) string {
	if security(d) {
		return fmt.Sprintf("CONTROL DEVICE 010101%02X", seconds)
	}
	return "AC_UNLOCK"
}

// SetTimeLine is stored for set_time on Security PUSH devices and replaced,
// when the line is sent, by SET OPTIONS DateTime=<the time then>.
// Attendance firmware sets its clock from the Date header of our replies
// and re-reads its options (TimeZone) on CHECK.
const SetTimeLine = "SET OPTIONS DateTime=*"

func setTimeLine(d attendance.Device) string {
	if security(d) {
		return SetTimeLine
	}
	return "CHECK"
}

// reuploadLine asks the device for its records of a time range again, in
// its own clock's wall time: they come back as ordinary uploads.
func reuploadLine(d attendance.Device, loc *time.Location, start, end time.Time) string {
	offset := time.Duration(0)
	if d.ClockOffsetSeconds != nil {
		offset = time.Duration(*d.ClockOffsetSeconds) * time.Second
	}
	const layout = "2006-01-02 15:04:05"
	return fmt.Sprintf("DATA QUERY ATTLOG StartTime=%s\tEndTime=%s", start.Add(offset).In(loc).Format(layout), end.Add(offset).In(loc).Format(layout))
}

// infoLine asks for firmware, counts and capacities.
func infoLine(d attendance.Device) string {
	if security(d) {
		return "GET OPTIONS ~SerialNumber,FirmVer,~DeviceName,UserCount,FPCount,FaceCount,TransactionCount,~MaxUserCount,~MaxAttLogCount"
	}
	return "INFO"
}

// RebootLine restarts the device. Firmware ignores what follows it in a
// reply, so it is always sent last.
const RebootLine = "REBOOT"

// Succeeded judges a device's return code for a line of a command: 0 or
// more is success (a count, for queries); a delete of a user the device
// does not have (-10) and a re-upload of an empty range (-1) have their
// result too.
func Succeeded(kind attendance.CommandKind, _ attendance.CommandLine, code int) bool {
	switch {
	case code >= 0:
		return true
	case kind == attendance.CommandDeleteEmployees && code == -10:
		return true
	case kind == attendance.CommandReupload && code == -1:
		return true
	}
	return false
}
