package adms

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// Protocol versions we speak.
const (
	AttendancePushVersion = "2.4.1"
	SecurityPushVersion   = "3.1.2"
)

// transFlag asks for every table we use, in the string form the documents
// recommend (the bit-string form's positions differ between documents).
const transFlag = "TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic"

// OptionsConfig is what an option block tells a device.
type OptionsConfig struct {
	Delay      time.Duration // heartbeat poll interval
	ErrorDelay time.Duration // retry delay after a failure
	// TimeZone is the TimeZone value, or "" to leave the device's own.
	TimeZone string
	Stamps   map[string]string
}

// seconds renders a duration as whole seconds, at least 1.
func seconds(d time.Duration) string { return strconv.Itoa(max(1, int(d/time.Second))) }

// stamp is the stored stamp of table, or None. Never 0: a 0 stamp asks the
// device to upload its whole log again, at every handshake.
func stamp(stamps map[string]string, table string) string {
	if v := stamps[table]; v != "" && v != "0" {
		return v
	}
	return "None"
}

// AttendanceOptions is the reply to an Attendance PUSH handshake
// (GET /iclock/cdata?options=all): the first line names the device, then
// key=value lines in the documented order.
func AttendanceOptions(serial string, c OptionsConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET OPTION FROM: %s\n", serial)
	for _, t := range []string{"ATTLOG", "OPERLOG", "ATTPHOTO", "BIODATA"} {
		fmt.Fprintf(&b, "%sStamp=%s\n", t, stamp(c.Stamps, t))
	}
	fmt.Fprintf(&b, "ErrorDelay=%s\nDelay=%s\nTransTimes=00:00;14:05\nTransInterval=1\nTransFlag=%s\n",
		seconds(c.ErrorDelay), seconds(c.Delay), transFlag)
	if c.TimeZone != "" {
		fmt.Fprintf(&b, "TimeZone=%s\n", c.TimeZone)
	}
	fmt.Fprintf(&b, "Realtime=1\nEncrypt=None\nServerVer=%s\nPushProtVer=%s\n", AttendancePushVersion, AttendancePushVersion)
	return b.String()
}

// SecurityOptions is the configuration of a Security PUSH device: the reply
// to its handshake once registered, and to /iclock/push.
func SecurityOptions(registryCode, sessionID string, c OptionsConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry=ok\nRegistryCode=%s\nServerVersion=%s\nServerName=PunchConnect\nPushProtVer=%s\nPushVersion=%s\n",
		registryCode, SecurityPushVersion, SecurityPushVersion, SecurityPushVersion)
	fmt.Fprintf(&b, "ErrorDelay=%s\nRequestDelay=%s\nTransTimes=00:00;14:05\nTransInterval=1\nTransTables=User Transaction\nRealtime=1\n",
		seconds(c.ErrorDelay), seconds(c.Delay))
	if c.TimeZone != "" {
		fmt.Fprintf(&b, "TimeZone=%s\n", c.TimeZone)
	}
	fmt.Fprintf(&b, "SessionID=%s\nTimeoutSec=10\n", sessionID)
	return b.String()
}

// TimeZoneOption writes a UTC offset (seconds east) as the TimeZone option:
// whole hours when it is one ("8", "-6"), otherwise minutes ("330" for
// +05:30), as ZKTeco's document specifies; or ±hh:mm for firmware that
// wants it.
func TimeZoneOption(offset int, format attendance.TimezoneFormat) string {
	if format == attendance.TimezoneHHMM {
		sign := "+"
		if offset < 0 {
			sign, offset = "-", -offset
		}
		return fmt.Sprintf("%s%02d:%02d", sign, offset/3600, offset%3600/60)
	}
	if offset%3600 == 0 {
		return strconv.Itoa(offset / 3600)
	}
	return strconv.Itoa(offset / 60)
}

// EncodeTime is ZKTeco's time encoding (binary protocol, Security PUSH
// DateTime=): seconds counted in 31-day months from 2000, local wall time.
func EncodeTime(t time.Time) int64 {
	return ((int64(t.Year()%100)*12*31+int64(t.Month()-1)*31+int64(t.Day()-1))*24*3600 +
		int64(t.Hour())*3600 + int64(t.Minute())*60 + int64(t.Second()))
}

// DecodeTime reverses EncodeTime into a wall time (in UTC as a container).
func DecodeTime(v int64) time.Time {
	sec := int(v % 60)
	v /= 60
	minute := int(v % 60)
	v /= 60
	hour := int(v % 24)
	v /= 24
	day := int(v%31) + 1
	v /= 31
	month := time.Month(v%12) + 1
	year := int(v/12) + 2000
	return time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
}

// OKCount is the acknowledgement of an upload that ZKTeco's document
// specifies, counting every record accepted, duplicates included: firmware
// that gets a bare OK may re-send the batch forever.
func OKCount(n int) string { return "OK: " + strconv.Itoa(n) }
