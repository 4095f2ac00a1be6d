package adms

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

func intp(n int) *int { return &n }

func TestParseATTLOG(t *testing.T) {
	body := "" +
		"1452\t2015-07-30 15:16:28\t0\t1\t0\t0\t0\n" + // the document's example, 7 fields
		"016\t2026-03-28 09:01:23\t1\t15\r\n" + // eSSL zero-padded PIN, 4 fields, CRLF
		"20156107\t2020-02-22 23:10:05\t255\t1\t\t0\t0\t2\n" + // empty workcode, state 255
		"11\t2025-08-27 10:57:49\t0\t25\t0\t0\t0\t0\t0\t0\n" + // SpeedFace, 10 fields
		"42\t2026-03-28 08:00:00\t0\t1\t0\t0\t0\t1\t36.2\t97.2\t0\t0\t0\t0\t0\t0\t0\n" + // 17 fields
		"\n   \n" + // blank lines are not records
		"bad line without tabs\n" +
		"7\t0000-00-00 00:00:00\t0\t1\n" +
		"7\t2026-02-30 10:00:00\t0\t1\n" +
		"\t2026-03-28 10:00:00\t0\t1\n" +
		strings.Repeat("9", 25) + "\t2026-03-28 10:00:00\t0\t1\n"
	recs := ParseATTLOG([]byte(body))
	if len(recs) != 10 {
		t.Fatalf("%d records, want 10", len(recs))
	}
	want := []struct {
		pin, time string
		state     *int
		verify    string
		err       bool
	}{
		{"1452", "2015-07-30 15:16:28", intp(0), "1", false},
		{"016", "2026-03-28 09:01:23", intp(1), "15", false},
		{"20156107", "2020-02-22 23:10:05", intp(255), "1", false},
		{"11", "2025-08-27 10:57:49", intp(0), "25", false},
		{"42", "2026-03-28 08:00:00", intp(0), "1", false},
		{"bad line without tabs", "", nil, "", true},
		{"7", "0000-00-00 00:00:00", intp(0), "1", true},
		{"7", "2026-02-30 10:00:00", intp(0), "1", true},
		{"", "2026-03-28 10:00:00", intp(0), "1", true},
		{strings.Repeat("9", 25), "2026-03-28 10:00:00", intp(0), "1", true},
	}
	for i, w := range want {
		r := recs[i]
		if r.PIN != w.pin || r.Time != w.time || !reflect.DeepEqual(r.State, w.state) || r.Verify != w.verify || (r.Err != "") != w.err {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		if !w.err && r.Wall.Format(DeviceTimeLayout) != w.time {
			t.Errorf("record %d wall = %v", i, r.Wall)
		}
		if r.Raw == "" || strings.ContainsAny(r.Raw, "\r\n") {
			t.Errorf("record %d raw %q", i, r.Raw)
		}
	}
}

func TestParseRtlog(t *testing.T) {
	body := "time=2017-01-10 11:49:32\tpin=1001\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=15\tindex=42\n" +
		"time=2017-01-10 11:50:00\tpin=1001\tcardno=0\tevent=3\tinoutstatus=1\tverifytype=0000000000000010\tindex=43\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=36.5\n" +
		"time=2017-01-10 11:51:00\tpin=0\tevent=206\tindex=44\n" + // device event
		"time=2017-01-10 11:52:00\tpin=1002\tevent=27\tverifytype=1\tindex=45\n" + // denied
		"time=2017-01-10 11:53:00\tpin=1003\tevent=101\tindex=46\n" + // alarm
		"garbage\n"
	evs := ParseRtlog([]byte(body))
	if len(evs) != 6 {
		t.Fatalf("%d events", len(evs))
	}
	if e := evs[0]; !e.IsPunch || e.PIN != "1001" || e.Verify != "15" || *e.State != 0 || e.Index != "42" {
		t.Errorf("first = %+v", e)
	}
	if e := evs[1]; !e.IsPunch || *e.InOut != 1 || e.Verify != "0000000000000010" {
		t.Errorf("second = %+v", e)
	}
	for i, why := range map[int]string{2: "device event", 3: "denied", 4: "alarm"} {
		if evs[i].IsPunch || !strings.Contains(evs[i].NotPunchBy, why) {
			t.Errorf("event %d = %+v, want not a punch (%s)", i, evs[i], why)
		}
	}
	if e := evs[5]; !e.IsPunch || e.Err == "" {
		t.Errorf("garbage = %+v, want a malformed punch record", e)
	}
}

func TestParseOPERLOG(t *testing.T) {
	body := "USER PIN=982\tName=Richard\tPri=14\tPasswd=\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=0\tViceCard=\n" +
		"FP PIN=982\tFID=1\tSize=1336\tValid=1\tTMP=ocosgoulTUEdNKVRwRQ0TU=\n" +
		"OPLOG 4\t14\t2015-07-30 10:22:34\t0\t0\t0\t0\n" +
		"USER PIN=983\tName=\xd5\xc5\xc8\xfd\tPri=0\n"
	ls := ParseOPERLOG([]byte(body))
	if len(ls) != 4 {
		t.Fatalf("%d lines", len(ls))
	}
	if ls[0].Tag != "USER" || ls[0].Fields["pin"] != "982" || ls[0].Fields["name"] != "Richard" || ls[0].Fields["pri"] != "14" || ls[0].Fields["card"] != "[15CD5B07]" {
		t.Errorf("USER = %+v", ls[0])
	}
	if ls[1].Tag != "FP" || ls[1].Fields["fid"] != "1" {
		t.Errorf("FP = %+v", ls[1])
	}
	if ls[2].Tag != "OPLOG" || !reflect.DeepEqual(ls[2].Positional, []string{"4", "14", "2015-07-30 10:22:34", "0", "0", "0", "0"}) {
		t.Errorf("OPLOG = %+v", ls[2])
	}
	if got := decodeName([]byte(ls[3].Fields["name"]), "83"); got != "张三" {
		t.Errorf("GB18030 name = %q, want 张三", got)
	}
	if got := decodeName([]byte("José"), "69"); got != "José" {
		t.Errorf("UTF-8 name = %q", got)
	}
	if got := decodeName([]byte("\xd5\xc5"), "69"); got != "\uFFFD\uFFFD" && got != "\uFFFD" {
		t.Errorf("non-UTF-8 name on a non-Chinese device = %q", got)
	}
}

func TestParseDeviceCmd(t *testing.T) {
	body := "ID=info8487&Return=0&CMD=DATA\nID=fp7464&Return=0&CMD=DATA\n" +
		"ID=12&SN=BKRK233600045&Return=-1002&CMD=DATA\n" +
		"ID=i1&Return=0&CMD=INFO\n~DeviceName=SpeedFace\nMaxAttLogCount=200000\nTransactionCount=199000\nFWVersion=Ver 8.0.4.2\n" +
		"ID=shell1\nReturn=0\nCMD=Shell\nContent=ok\n" +
		"Return=0&CMD=DATA\n"
	rs := ParseDeviceCmd([]byte(body))
	if len(rs) != 5 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	if rs[0].ID != "info8487" || rs[0].Return != 0 || rs[0].Cmd != "DATA" || rs[1].ID != "fp7464" {
		t.Errorf("first two = %+v", rs[:2])
	}
	if rs[2].Return != -1002 || rs[2].Extra["SN"] != "BKRK233600045" {
		t.Errorf("third = %+v", rs[2])
	}
	if rs[3].Cmd != "INFO" || rs[3].Extra["MaxAttLogCount"] != "200000" || rs[3].Extra["~DeviceName"] != "SpeedFace" {
		t.Errorf("INFO = %+v", rs[3])
	}
	if rs[4].ID != "shell1" || rs[4].Cmd != "Shell" || rs[4].Extra["Content"] != "ok" {
		t.Errorf("multi-line = %+v", rs[4])
	}
}

func TestParseQueryInfoOptions(t *testing.T) {
	q := ParseQuery("sn=BKRK233600045&Options=all&PushVer=2.4.1&INFO=Ver%202.0.12-20150625,0,0,0,192.168.16.27,10,7,15,0,111&bad=%zz")
	if q.Get("SN") != "BKRK233600045" || q.Get("options") != "all" || q.Get("pushver") != "2.4.1" || q.Get("bad") != "%zz" {
		t.Fatalf("query = %v", q)
	}
	info, ok := ParseInfo(q.Get("INFO"))
	if !ok || info.Firmware != "Ver 2.0.12-20150625" || *info.Users != 0 || info.IP != "192.168.16.27" || *info.Faces != 0 {
		t.Fatalf("info = %+v", info)
	}
	if _, ok := ParseInfo("garbage"); ok {
		t.Fatal("garbage INFO parsed")
	}
	opts := ParseOptions([]byte("~OEMVendor=ZKTECO CO., LTD.,FingerFunOn=1,~MaxAttLogCount=200000,IPAddress=10.0.0.5"))
	want := map[string]string{"OEMVendor": "ZKTECO CO., LTD.", "FingerFunOn": "1", "MaxAttLogCount": "200000", "IPAddress": "10.0.0.5"}
	if !reflect.DeepEqual(opts, want) {
		t.Fatalf("options = %v, want %v", opts, want)
	}
}

func TestTimeZoneOption(t *testing.T) {
	for _, tc := range []struct {
		zone   string
		at     time.Time
		hours  string
		hhmm   string
		offset int
	}{
		{"Asia/Shanghai", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "8", "+08:00", 8 * 3600},
		{"Asia/Kolkata", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "330", "+05:30", 19800},
		{"America/Chicago", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), "-6", "-06:00", -6 * 3600},
		{"America/Chicago", time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC), "-5", "-05:00", -5 * 3600},
		{"America/St_Johns", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), "-210", "-03:30", -12600},
		{"Asia/Kathmandu", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), "345", "+05:45", 20700},
		{"UTC", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), "0", "+00:00", 0},
	} {
		loc, _ := time.LoadLocation(tc.zone)
		_, off := tc.at.In(loc).Zone()
		if off != tc.offset {
			t.Fatalf("%s offset %d", tc.zone, off)
		}
		if got := TimeZoneOption(off, attendance.TimezoneHours); got != tc.hours {
			t.Errorf("%s hours = %q, want %q", tc.zone, got, tc.hours)
		}
		if got := TimeZoneOption(off, attendance.TimezoneHHMM); got != tc.hhmm {
			t.Errorf("%s hh:mm = %q, want %q", tc.zone, got, tc.hhmm)
		}
	}
}

func TestEncodeTime(t *testing.T) {
	at := time.Date(2026, 3, 28, 9, 1, 23, 0, time.UTC)
	if got := DecodeTime(EncodeTime(at)); !got.Equal(at) {
		t.Fatalf("round trip %v → %v", at, got)
	}
	// The documented formula for 2017-01-10 11:49:32.
	want := int64(((17*12*31+0*31+9)*86400 + 11*3600 + 49*60 + 32))
	if got := EncodeTime(time.Date(2017, 1, 10, 11, 49, 32, 0, time.UTC)); got != want {
		t.Fatalf("EncodeTime = %d, want %d", got, want)
	}
}

func TestAttendanceOptions(t *testing.T) {
	got := AttendanceOptions("0316144680030", OptionsConfig{Delay: 10 * time.Second, ErrorDelay: 30 * time.Second, TimeZone: "8",
		Stamps: map[string]string{"ATTLOG": "0", "OPERLOG": "9999"}})
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if lines[0] != "GET OPTION FROM: 0316144680030" {
		t.Fatalf("first line %q", lines[0])
	}
	for _, want := range []string{"ATTLOGStamp=None", "OPERLOGStamp=9999", "Delay=10", "ErrorDelay=30", "TimeZone=8", "Realtime=1",
		"Encrypt=None", "TransFlag=TransData AttLog\tOpLog", "ServerVer=2.4.1", "PushProtVer=2.4.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("options lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Stamp=0") {
		t.Error("a 0 stamp asks for a full re-upload at every boot")
	}
	if strings.Contains(AttendanceOptions("X", OptionsConfig{}), "TimeZone") {
		t.Error("TimeZone sent without a zone")
	}
}
