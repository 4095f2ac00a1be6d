package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/adms"
	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/simulator"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// device registers a device in the test account and returns its simulator.
func (e *testEnv) device(serial, zone string, extra map[string]any) (*simulator.Device, string) {
	e.t.Helper()
	body := map[string]any{"serial_number": serial, "timezone": zone, "name": "Door " + serial, "site": "HQ"}
	for k, v := range extra {
		body[k] = v
	}
	d := e.api.Do("POST", "/v1/devices", body).Expect(e.t, http.StatusCreated).Data(e.t)
	loc, err := time.LoadLocation(zone)
	if err != nil {
		e.t.Fatal(err)
	}
	return &simulator.Device{Serial: serial, Server: e.url, Location: loc, Now: e.clock.Now, Rand: func() float64 { return 1 }}, d["id"].(string)
}

func (e *testEnv) employee(badge, name string) string {
	e.t.Helper()
	return e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": badge, "name": name}).Expect(e.t, http.StatusCreated).Data(e.t)["id"].(string)
}

// post sends a raw device request and returns status and body.
func (e *testEnv) post(path, body string) (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.url+path, "text/plain", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *testEnv) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type punchList struct {
	Data       []map[string]any `json:"data"`
	Pagination struct {
		Total      int     `json:"total"`
		NextCursor *string `json:"next_cursor"`
	} `json:"pagination"`
}

func (e *testEnv) attendance(query string) punchList {
	e.t.Helper()
	var l punchList
	e.api.Do("GET", "/v1/attendance?"+query, nil).Expect(e.t, http.StatusOK).JSON(e.t, &l)
	return l
}

func (e *testEnv) rejected(query string) punchList {
	e.t.Helper()
	var l punchList
	e.api.Do("GET", "/v1/attendance/rejected?"+query, nil).Expect(e.t, http.StatusOK).JSON(e.t, &l)
	return l
}

// events returns the account's events of a type, in order.
func (e *testEnv) events(typ string) []map[string]any {
	e.t.Helper()
	evs, err := e.store.EventsSince(context.Background(), e.acct.ID, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestDeviceHandshakeHeartbeatAndStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		dev, devID := e.device("BKRK233600045", "Asia/Kolkata", nil)
		reply, err := dev.Handshake(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if dev.TimeZone() != "330" || dev.Delay() != 10*time.Second || !strings.Contains(reply, "Realtime=1") {
			t.Fatalf("handshake reply:\n%s", reply)
		}
		if _, err := dev.Heartbeat(context.Background(), "Ver 2.0.12-20150625,12,20,3456,192.168.16.27,10,7,15,3,111"); err != nil {
			t.Fatal(err)
		}
		d := e.api.Do("GET", "/v1/devices/"+devID, nil).Expect(t, 200).Data(t)
		counts := d["counts"].(map[string]any)
		if d["status"] != "online" || d["protocol"] != "attendance" || d["push_version"] != "2.4.1" || d["firmware"] != "Ver 2.0.12-20150625" ||
			counts["users"] != 12.0 || counts["logs"] != 3456.0 || counts["faces"] != 3.0 || d["ip_address"] != "127.0.0.1" {
			t.Fatalf("device after contact = %v", d)
		}
		st := e.events(attendance.EventDeviceStatus)
		if len(st) != 1 {
			t.Fatalf("%d device.status events, want 1 (first contact)", len(st))
		}
		status := st[0]["status"].(map[string]any)
		if status["state"] != "online" || status["previous_state"] != "pending" || st[0]["device"].(map[string]any)["serial_number"] != "BKRK233600045" {
			t.Fatalf("first-contact event = %v", st[0])
		}

		// Silence beyond the offline threshold: one offline event, once.
		e.clock.Advance(5 * time.Minute)
		for range 2 {
			if _, err := adms.MarkOffline(context.Background(), e.store, e.clock.Now().Add(-90*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		st = e.events(attendance.EventDeviceStatus)
		if len(st) != 2 || st[1]["status"].(map[string]any)["state"] != "offline" || st[1]["status"].(map[string]any)["previous_state"] != "online" {
			t.Fatalf("after silence: %v", st)
		}
		if _, err := dev.Heartbeat(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		st = e.events(attendance.EventDeviceStatus)
		if len(st) != 3 || st[2]["status"].(map[string]any)["state"] != "online" {
			t.Fatalf("back online: %v", st)
		}
	})
}

func TestAttlogIngest(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.clock.Set(time.Date(2026, 3, 28, 8, 30, 0, 0, time.UTC))
		dev, devID := e.device("BKRK233600045", "Europe/Paris", nil)
		sarah := e.employee("1042", "Sarah Chen")
		e.employee("016", "Zero Padded")
		ctx := context.Background()
		if _, err := dev.Handshake(ctx); err != nil {
			t.Fatal(err)
		}

		body := "1042\t2026-03-28 09:01:23\t0\t1\t0\t0\t0\n" + // 08:01:23Z, in
			"016\t2026-03-28 09:05:00\t1\t15\n" + // 4 fields
			"1042\t2026-03-28 09:01:50\t0\t1\t0\t0\t0\n" + // 27 s after the first: duplicate window
			"1042\t2026-03-28 12:00:00\t0\t4\t0\t0\t0\t0\t0\t0\n" + // 10 fields, out (first_in_last_out)
			"9999\t2026-03-28 10:00:00\t0\t1\t0\t0\t0\n" + // unregistered badge
			"1042\t2000-01-01 00:00:00\t0\t1\t0\t0\t0\n" + // RTC reset
			"this is not a record\n"
		status, reply := e.post("/iclock/cdata?SN=BKRK233600045&table=ATTLOG&Stamp=9999", body)
		if status != 200 || reply != "OK: 7" {
			t.Fatalf("upload: %d %q", status, reply)
		}
		// The same batch again (a lost ack): acknowledged in full, stored once.
		if _, reply := e.post("/iclock/cdata.aspx?SN=BKRK233600045&table=ATTLOG&Stamp=9999", body); reply != "OK: 7" {
			t.Fatalf("re-upload reply %q", reply)
		}

		l := e.attendance("sort=timestamp")
		if l.Pagination.Total != 3 {
			t.Fatalf("%d punches, want 3: %v", l.Pagination.Total, l.Data)
		}
		first := l.Data[0]
		if first["timestamp"] != "2026-03-28T08:01:23Z" || first["local_time"] != "2026-03-28T09:01:23+01:00" || first["direction"] != "in" ||
			first["method"] != "fingerprint" || first["device_time"] != "2026-03-28 09:01:23" || first["raw"] != "1042\t2026-03-28 09:01:23\t0\t1\t0\t0\t0" ||
			first["employee"].(map[string]any)["id"] != sarah || first["state"] != 0.0 || first["source"] != "push" || first["deduplicated"] != true {
			t.Fatalf("first punch = %v", first)
		}
		if l.Data[1]["badge_number"] != "016" || l.Data[1]["method"] != "face" {
			t.Fatalf("second punch = %v", l.Data[1])
		}
		if l.Data[2]["direction"] != "out" || l.Data[2]["method"] != "card" {
			t.Fatalf("third punch = %v", l.Data[2])
		}
		got := e.api.Do("GET", "/v1/attendance/"+first["id"].(string), nil).Expect(t, 200).Data(t)
		if got["raw"] != first["raw"] {
			t.Fatalf("GET punch = %v", got)
		}

		rej := e.rejected("")
		reasons := map[string]int{}
		for _, r := range rej.Data {
			reasons[r["reason"].(string)]++
		}
		want := map[string]int{"duplicate_window": 1, "unregistered_badge": 1, "time_too_old": 1, "malformed": 1}
		if fmt.Sprint(reasons) != fmt.Sprint(want) {
			t.Fatalf("rejected reasons %v, want %v", reasons, want)
		}

		// One event per accepted punch, shaped like the seed's payload.
		evs := e.events(attendance.EventAttendancePunch)
		if len(evs) != 3 {
			t.Fatalf("%d punch events, want 3", len(evs))
		}
		ev := evs[0]
		for _, k := range []string{"event_id", "event_type", "timestamp", "device", "employee", "punch", "metadata"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("event lacks %s: %v", k, ev)
			}
		}
		punch := ev["punch"].(map[string]any)
		if punch["direction"] != "in" || punch["method"] != "fingerprint" || punch["confidence"] != nil ||
			punch["local_time"] != "2026-03-28T09:01:23+01:00" || ev["metadata"].(map[string]any)["deduplicated"] != true ||
			ev["device"].(map[string]any)["name"] != "Door BKRK233600045" || ev["employee"].(map[string]any)["badge_number"] != "1042" {
			t.Fatalf("event = %v", ev)
		}
		if first["event_id"] != ev["event_id"] {
			t.Fatalf("punch event_id %v, event %v", first["event_id"], ev["event_id"])
		}

		t.Run("unregistered badge is released when registered", func(t *testing.T) {
			var held map[string]any
			for _, r := range rej.Data {
				if r["reason"] == "unregistered_badge" {
					held = r
				}
			}
			e.api.Do("POST", "/v1/attendance/rejected/"+held["id"].(string)+"/release", nil).ExpectError(t, http.StatusConflict, "badge_not_registered")
			e.employee("9999", "Late Hire")
			l := e.attendance("badge_number=9999")
			if l.Pagination.Total != 1 || l.Data[0]["id"] != held["id"] || l.Data[0]["direction"] != "in" || l.Data[0]["released_at"] == nil {
				t.Fatalf("released punch = %v", l.Data)
			}
			if n := len(e.events(attendance.EventAttendancePunch)); n != 4 {
				t.Fatalf("%d punch events after the release, want 4", n)
			}
		})
		t.Run("explicit release", func(t *testing.T) {
			var old, bad map[string]any
			for _, r := range e.rejected("").Data {
				switch r["reason"] {
				case "time_too_old":
					old = r
				case "malformed":
					bad = r
				}
			}
			if bad["releasable"] != false || old["releasable"] != true {
				t.Fatalf("releasable flags: %v %v", bad, old)
			}
			e.api.Do("POST", "/v1/attendance/rejected/"+bad["id"].(string)+"/release", nil).ExpectError(t, http.StatusConflict, "not_releasable")
			p := e.api.Do("POST", "/v1/attendance/rejected/"+old["id"].(string)+"/release", nil, apitest.IdempotencyKey("rel-1")).Expect(t, 200).Data(t)
			if p["timestamp"] != "1999-12-31T23:00:00Z" || p["object"] != "punch" {
				t.Fatalf("released = %v", p)
			}
			e.api.Do("POST", "/v1/attendance/rejected/"+old["id"].(string)+"/release", nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
			e.api.Do("GET", "/v1/attendance/rejected/"+old["id"].(string), nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
		})
		t.Run("device users and other tables", func(t *testing.T) {
			operlog := "USER PIN=1042\tName=Sarah Chen\tPri=14\tPasswd=123\tCard=[15CD5B07]\tGrp=1\n" +
				"USER PIN=77\tName=\xd5\xc5\xc8\xfd\tPri=0\n" +
				"FP PIN=1042\tFID=1\tSize=8\tValid=1\tTMP=AAAA\n" +
				"OPLOG 4\t14\t2026-03-28 10:22:34\t0\t0\t0\t0\n"
			if _, reply := e.post("/iclock/cdata?SN=BKRK233600045&table=OPERLOG&Stamp=42", operlog); reply != "OK: 4" {
				t.Fatalf("OPERLOG reply %q", reply)
			}
			var users struct {
				Data []map[string]any `json:"data"`
			}
			e.api.Do("GET", "/v1/devices/"+devID+"/users", nil).Expect(t, 200).JSON(t, &users)
			if len(users.Data) != 2 || users.Data[0]["pin"] != "1042" || users.Data[0]["employee_id"] != sarah ||
				users.Data[0]["privilege"] != 14.0 || users.Data[0]["has_password"] != true || users.Data[0]["templates"] != 1.0 {
				t.Fatalf("device users = %v", users.Data)
			}
			// Not a Chinese-language device: the GB bytes are shown as replacement characters, kept raw.
			if !strings.ContainsRune(users.Data[1]["name"].(string), '\uFFFD') {
				t.Fatalf("undecodable name = %q", users.Data[1]["name"])
			}
			if n, _ := e.store.CountKeptUploads(context.Background(), devID, "OPERLOG"); n != 1 {
				t.Fatalf("OPLOG lines kept %d times", n)
			}
			for _, path := range []string{"/iclock/cdata?SN=BKRK233600045&table=ATTPHOTO", "/iclock/fdata?SN=BKRK233600045&table=ATTPHOTO",
				"/iclock/cdata?SN=BKRK233600045&table=SOMETHINGNEW", "/iclock/cdata/?SN=BKRK233600045&table=ERRORLOG"} {
				if status, reply := e.post(path, "PIN=x.jpg\nSN=BKRK233600045\nsize=3\nCMD=uploadphoto\x00\xff\xd8\xff"); status != 200 || reply != "OK" {
					t.Fatalf("%s: %d %q", path, status, reply)
				}
			}
			if n, _ := e.store.CountKeptUploads(context.Background(), devID, "ATTPHOTO"); n != 2 {
				t.Fatalf("photos kept: %d", n)
			}
			// The handshake hands the stored stamps back.
			reply, _ := dev.Handshake(context.Background())
			if !strings.Contains(reply, "ATTLOGStamp=9999") || !strings.Contains(reply, "OPERLOGStamp=42") {
				t.Fatalf("stamps not handed back:\n%s", reply)
			}
		})
	})
}

func TestClockOffsetAndCompleteness(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.clock.Set(time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC))
		dev, devID := e.device("FAST0001", "UTC", nil)
		dev.ClockOffset = 5 * time.Minute // 5 minutes fast
		e.employee("1", "One")
		ctx := context.Background()
		dev.Handshake(ctx)
		for range 4 { // online for several poll intervals
			dev.Heartbeat(ctx, "")
			e.clock.Advance(10 * time.Second)
		}
		for range 4 {
			for range 6 { // a minute of polls between punches
				e.clock.Advance(10 * time.Second)
				dev.Heartbeat(ctx, "")
			}
			dev.Record("1", e.clock.Now(), 0, 1)
			e.clock.Advance(300 * time.Millisecond) // upload latency
			if _, err := dev.Upload(ctx, 0); err != nil {
				t.Fatal(err)
			}
			dev.Heartbeat(ctx, "")
		}
		d := e.api.Do("GET", "/v1/devices/"+devID, nil).Expect(t, 200).Data(t)
		if d["clock_offset_seconds"] != 300.0 {
			t.Fatalf("clock_offset_seconds = %v, want 300", d["clock_offset_seconds"])
		}
		l := e.attendance("sort=-timestamp&per_page=1")
		last := l.Data[0]
		// The device said 5 minutes later than the truth; the punch is at the true time.
		want := e.clock.Now().Add(-300 * time.Millisecond).Truncate(time.Second)
		if last["timestamp"] != want.Format(time.RFC3339) || last["clock_offset_seconds"] != 300.0 {
			t.Fatalf("corrected punch = %v, want timestamp %s", last, want.Format(time.RFC3339))
		}

		// complete_through: polls with nothing buffered advance it; a backlog holds it back.
		ct := func() string {
			v := e.api.Do("GET", "/v1/devices/"+devID, nil).Expect(t, 200).Data(t)["complete_through"]
			if v == nil {
				return ""
			}
			return v.(string)
		}
		before := ct()
		if before == "" {
			t.Fatal("complete_through not set after quiet polls")
		}
		e.clock.Advance(10 * time.Second)
		for range 5 { // an offline spell's punches, uploaded as a backlog
			dev.Record("1", e.clock.Now().Add(-time.Hour), 0, 1)
		}
		pollAt := e.clock.Now()
		dev.Upload(ctx, 0)
		dev.Heartbeat(ctx, "")
		if got := ct(); got != before {
			// The poll right after a backlog does not prove the device is drained.
			t.Fatalf("complete_through moved to %s right after a backlog", got)
		}
		e.clock.Advance(10 * time.Second)
		dev.Heartbeat(ctx, "")
		if want := pollAt.Add(8 * time.Second).Format(time.RFC3339); ct() != want {
			t.Fatalf("complete_through = %s, want %s (this quiet poll, less the margin)", ct(), want)
		}
	})
}

func TestTimeZoneChangeMakesDeviceReread(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		// The evening before Europe/Paris moves to summer time.
		e.clock.Set(time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC))
		dev, devID := e.device("DSTDEV01", "Europe/Paris", nil)
		ctx := context.Background()
		dev.Handshake(ctx)
		if dev.TimeZone() != "1" {
			t.Fatalf("winter TimeZone = %q", dev.TimeZone())
		}
		if cmds, _ := dev.Heartbeat(ctx, ""); len(cmds) != 0 {
			t.Fatalf("commands before the change: %v", cmds)
		}
		e.clock.Set(time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC)) // 04:00 CEST
		cmds, err := dev.Heartbeat(ctx, "")
		if err != nil || len(cmds) != 1 || cmds[0].Text != "CHECK" || len(cmds[0].ID) > 16 {
			t.Fatalf("after the change: %v %v", cmds, err)
		}
		if dev.TimeZone() != "2" {
			t.Fatalf("the device re-read its options: TimeZone = %q, want 2", dev.TimeZone())
		}
		if cmds, _ := dev.Heartbeat(ctx, ""); len(cmds) != 0 {
			t.Fatalf("CHECK repeated after the re-read: %v", cmds)
		}
		// A new zone set through the API is picked up the same way.
		e.api.Do("PATCH", "/v1/devices/"+devID, map[string]any{"timezone": "Asia/Kolkata", "timezone_format": "hh:mm"}).Expect(t, 200)
		if cmds, _ := dev.Heartbeat(ctx, ""); len(cmds) != 1 || dev.TimeZone() != "+05:30" {
			t.Fatalf("after a zone change: %v, TimeZone %q", cmds, dev.TimeZone())
		}
	})
}

func TestUnclaimedSerial(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		e.clock.Set(time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC))
		ghost := &simulator.Device{Serial: "GHOST0001", Server: e.url, Now: e.clock.Now}
		reply, err := ghost.Handshake(ctx)
		if err != nil || strings.Contains(reply, "TimeZone") {
			t.Fatalf("unclaimed handshake: %v\n%s", err, reply)
		}
		ghost.Heartbeat(ctx, "")
		ghost.Record("1042", e.clock.Now().Add(-time.Minute), 0, 1)
		ghost.Record("1043", e.clock.Now(), 1, 1)
		if n, err := ghost.Upload(ctx, 0); err != nil || n != 2 {
			t.Fatalf("held upload: %d %v", n, err)
		}
		if l := e.attendance(""); l.Pagination.Total != 0 {
			t.Fatal("an unregistered serial created data")
		}
		list, err := e.store.UnclaimedDevices(ctx)
		if err != nil || len(list) != 1 || list[0].SerialNumber != "GHOST0001" || list[0].HeldUploads != 1 || list[0].LastIP != "127.0.0.1" {
			t.Fatalf("unclaimed = %+v, %v", list, err)
		}
		// Registering the serial processes what it sent, for this account.
		e.employee("1042", "Sarah")
		_, devID := e.device("ghost0001", "UTC", nil)
		l := e.attendance("")
		if l.Pagination.Total != 1 || l.Data[0]["device"].(map[string]any)["id"] != devID || l.Data[0]["timestamp"] != "2026-03-28T07:59:00Z" {
			t.Fatalf("held punches after registration: %v", l.Data)
		}
		if r := e.rejected("reason=unregistered_badge"); r.Pagination.Total != 1 {
			t.Fatalf("held unregistered badge: %v", r.Data)
		}
		if list, _ := e.store.UnclaimedDevices(ctx); len(list) != 0 {
			t.Fatalf("still unclaimed: %v", list)
		}
		// Registered after a handshake without a zone: the next poll asks it to re-read.
		cmds, _ := ghost.Heartbeat(ctx, "")
		if len(cmds) != 1 || cmds[0].Text != "CHECK" || ghost.TimeZone() != "0" {
			t.Fatalf("after registration: %v TimeZone %q", cmds, ghost.TimeZone())
		}
	})
}

func TestDeviceAccessChecks(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		_, devID := e.device("LOCKED01", "UTC", map[string]any{"allowed_source_cidrs": []string{"10.0.0.0/8"}})
		if status, _ := e.get("/iclock/getrequest?SN=LOCKED01"); status != http.StatusForbidden {
			t.Fatalf("from outside the allow-list: %d", status)
		}
		e.api.Do("PATCH", "/v1/devices/"+devID, map[string]any{"allowed_source_cidrs": []string{"10.0.0.0/8", "127.0.0.1"}, "comm_key": "88888888"}).Expect(t, 200)
		if status, _ := e.get("/iclock/getrequest?SN=LOCKED01"); status != http.StatusForbidden {
			t.Fatalf("without the comm key: %d", status)
		}
		if status, _ := e.get("/iclock/getrequest?SN=LOCKED01&ComKey=88888888"); status != http.StatusOK {
			t.Fatalf("with the comm key: %d", status)
		}
		d := e.api.Do("GET", "/v1/devices/"+devID, nil).Expect(t, 200).Data(t)
		if d["comm_key_set"] != true || strings.Contains(fmt.Sprint(d), "88888888") {
			t.Fatalf("device view shows the key: %v", d)
		}
		if status, _ := e.get("/iclock/getrequest"); status != http.StatusBadRequest {
			t.Fatalf("no SN: %d", status)
		}
		if status, body := e.get("/iclock/nosuchthing?SN=LOCKED01"); status != 200 || body != "OK" {
			t.Fatalf("unknown endpoint: %d %q", status, body)
		}
	})
}

func TestSecurityPush(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.clock.Set(time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC))
		_, devID := e.device("ACC0001", "Asia/Shanghai", nil)
		e.employee("1001", "Li")
		_, reply := e.get("/iclock/cdata?SN=ACC0001&options=all&pushver=3.1.2&DeviceType=acc")
		if !strings.Contains(reply, "registry=ok") || !strings.Contains(reply, "RequestDelay=10") {
			t.Fatalf("security handshake:\n%s", reply)
		}
		_, reply = e.post("/iclock/registry?SN=ACC0001", "DeviceType=acc,~DeviceName=SpeedFace-V5L,FirmVer=ZAM180-NF-Ver1.1.17,~MaxAttLogCount=100000")
		if !strings.HasPrefix(reply, "RegistryCode=") {
			t.Fatalf("registry reply %q", reply)
		}
		_, push := e.get("/iclock/push?SN=ACC0001")
		if !strings.Contains(push, strings.TrimSpace(strings.TrimPrefix(reply, "RegistryCode="))) {
			t.Fatalf("push config does not carry the registry code:\n%s", push)
		}
		rtlog := "time=2026-03-28 16:00:00\tpin=1001\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=1\tverifytype=0000000000000010\tindex=42\n" +
			"time=2026-03-28 16:00:05\tpin=0\tevent=206\tindex=43\n"
		if _, reply := e.post("/iclock/cdata?SN=ACC0001&table=rtlog", rtlog); reply != "OK" {
			t.Fatalf("rtlog reply %q", reply)
		}
		if _, reply := e.post("/iclock/cdata?SN=ACC0001&table=tabledata&tablename=user&count=2",
			"user uid=1\tcardno=\tpin=1001\tpassword=\tgroup=1\tname=Li\tprivilege=0\nuser uid=2\tpin=1002\tname=Wang\n"); reply != "user=2" {
			t.Fatalf("tabledata reply %q", reply)
		}
		if _, reply := e.post("/iclock/cdata?SN=ACC0001&table=rtstate", "time=2026-03-28 16:00:00\tsensor=01"); reply != "OK" {
			t.Fatalf("rtstate reply %q", reply)
		}
		_, tm := e.get("/iclock/rtdata?SN=ACC0001&type=time")
		if !strings.HasPrefix(tm, "DateTime=") || !strings.Contains(tm, "ServerTZ=+0800") {
			t.Fatalf("time reply %q", tm)
		}
		l := e.attendance("")
		if l.Pagination.Total != 1 || l.Data[0]["timestamp"] != "2026-03-28T08:00:00Z" || l.Data[0]["method"] != "face" {
			t.Fatalf("rtlog punches = %v", l.Data)
		}
		d := e.api.Do("GET", "/v1/devices/"+devID, nil).Expect(t, 200).Data(t)
		if d["protocol"] != "security" || d["firmware"] != "ZAM180-NF-Ver1.1.17" || d["counts"].(map[string]any)["log_capacity"] != 100000.0 {
			t.Fatalf("security device = %v", d)
		}
	})
}

func TestLogNearlyFull(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	e.device("FULL0001", "UTC", nil)
	e.post("/iclock/cdata?SN=FULL0001&table=options", "~MaxAttLogCount=1000,FingerFunOn=1")
	e.get("/iclock/getrequest?SN=FULL0001&INFO=" + url.QueryEscape("Ver 1,1,1,905,10.0.0.2,10,7,15,0,111"))
	e.get("/iclock/getrequest?SN=FULL0001&INFO=" + url.QueryEscape("Ver 1,1,1,950,10.0.0.2,10,7,15,0,111"))
	evs := e.events(attendance.EventDeviceLogNearlyFull)
	if len(evs) != 1 || evs[0]["log"].(map[string]any)["percent"] != 90.0 {
		t.Fatalf("log warnings = %v", evs)
	}
}

func TestPunchesAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.clock.Set(time.Date(2026, 3, 28, 9, 0, 0, 0, time.UTC))
		_, devID := e.device("GATEWAY1", "Asia/Kolkata", nil)
		e.employee("1042", "Sarah")
		e.employee("1043", "James")
		before := e.api.Do("GET", "/v1/settings", nil).Header.Get("X-RateLimit-Remaining")
		items := []any{
			map[string]any{"serial_number": "gateway1", "badge_number": "1042", "timestamp": "2026-03-28T13:31:23+05:30", "method": "face", "confidence": 0.97, "external_id": "gw-1"},
			map[string]any{"device_id": devID, "badge_number": "1043", "timestamp": "2026-03-28T13:35:00", "direction": "out"},
			map[string]any{"device_id": devID, "badge_number": "5555", "timestamp": "2026-03-28T13:36:00Z"},
			map[string]any{"device_id": "dev_01jq3v8c1kfx9b7n2m4p6r8t0w", "badge_number": "1042", "timestamp": "2026-03-28T13:36:00Z"},
			map[string]any{"device_id": devID, "badge_number": "1042", "timestamp": "yesterday"},
			map[string]any{"badge_number": "1042", "timestamp": "2026-03-28T13:36:00Z"},
		}
		var res struct {
			Data []struct {
				Index  int               `json:"index"`
				Status string            `json:"status"`
				Punch  map[string]any    `json:"punch"`
				Error  *apitest.APIError `json:"error"`
			} `json:"data"`
			Summary map[string]int `json:"summary"`
		}
		r := e.api.Do("POST", "/v1/punches", map[string]any{"punches": items}, apitest.Invalid()).Expect(t, 200)
		r.JSON(t, &res)
		if got := r.Header.Get("X-RateLimit-Remaining"); got != before {
			t.Fatalf("POST /v1/punches counted against the rate limit: remaining %s → %s", before, got)
		}
		wantStatus := []string{"accepted", "accepted", "rejected", "error", "error", "error"}
		for i, w := range wantStatus {
			if res.Data[i].Status != w {
				t.Fatalf("item %d = %+v, want %s", i, res.Data[i], w)
			}
		}
		p0 := res.Data[0].Punch
		if p0["timestamp"] != "2026-03-28T08:01:23Z" || p0["method"] != "face" || p0["confidence"] != 0.97 || p0["direction"] != "in" ||
			p0["source"] != "api" || p0["external_id"] != "gw-1" || p0["direction_source"] != "inferred" {
			t.Fatalf("first = %v", p0)
		}
		p1 := res.Data[1].Punch
		if p1["timestamp"] != "2026-03-28T08:05:00Z" || p1["local_time"] != "2026-03-28T13:35:00+05:30" || p1["direction"] != "out" || p1["direction_source"] != "client" {
			t.Fatalf("second (local time) = %v", p1)
		}
		if res.Data[2].Punch["reason"] != "unregistered_badge" {
			t.Fatalf("third = %v", res.Data[2])
		}
		for i, param := range map[int]string{3: "punches[3].device_id", 4: "punches[4].timestamp", 5: "punches[5].device_id"} {
			if res.Data[i].Error == nil || *res.Data[i].Error.Param != param {
				t.Fatalf("item %d error = %+v, want param %s", i, res.Data[i].Error, param)
			}
		}
		if res.Summary["accepted"] != 2 || res.Summary["rejected"] != 1 || res.Summary["errors"] != 3 {
			t.Fatalf("summary = %v", res.Summary)
		}
		// Retried: idempotent by external_id, and by device, badge and time.
		e.api.Do("POST", "/v1/punches", map[string]any{"punches": items[:2]}).Expect(t, 200).JSON(t, &res)
		if res.Data[0].Status != "duplicate" || res.Data[1].Status != "duplicate" || res.Data[0].Punch["id"] != p0["id"] {
			t.Fatalf("retry = %+v", res.Data)
		}
		if l := e.attendance(""); l.Pagination.Total != 2 {
			t.Fatalf("%d punches after a retry", l.Pagination.Total)
		}
		e.api.Do("POST", "/v1/punches", map[string]any{"punches": make([]any, 1001)}, apitest.Invalid()).ExpectError(t, 400, "batch_too_large")
	})
}

func TestAttendanceFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.clock.Set(time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC))
		_, tokyo := e.device("TOKYO001", "Asia/Tokyo", nil)
		_, ny := e.device("NEWYORK1", "America/New_York", map[string]any{"site": "US"})
		emp := e.employee("1", "One")
		post := func(devID, ts string) {
			e.api.Do("POST", "/v1/punches", map[string]any{"punches": []any{map[string]any{"device_id": devID, "badge_number": "1", "timestamp": ts}}}).Expect(t, 200)
		}
		post(tokyo, "2026-03-28T08:00:00") // 2026-03-27T23:00Z, local date 03-28
		post(ny, "2026-03-27T20:00:00")    // 2026-03-28T00:00Z, local date 03-27
		e.clock.Advance(time.Hour)
		post(tokyo, "2026-03-29T09:00:00") // received an hour later

		ids := func(l punchList) []string {
			var out []string
			for _, p := range l.Data {
				out = append(out, p["local_time"].(string))
			}
			return out
		}
		if got := ids(e.attendance("start_date=2026-03-28&end_date=2026-03-28")); len(got) != 1 || got[0] != "2026-03-28T08:00:00+09:00" {
			t.Fatalf("local date 03-28 = %v", got)
		}
		if got := ids(e.attendance("start_date=2026-03-28&end_date=2026-03-28&timezone=UTC")); len(got) != 1 || got[0] != "2026-03-27T20:00:00-04:00" {
			t.Fatalf("UTC date 03-28 = %v", got)
		}
		if got := ids(e.attendance("start_date=2026-03-27T23:00:00Z&end_date=2026-03-28T00:00:00Z")); len(got) != 2 {
			t.Fatalf("instants = %v", got)
		}
		if got := ids(e.attendance("site=US")); len(got) != 1 {
			t.Fatalf("site = %v", got)
		}
		if got := ids(e.attendance("employee_id=" + emp + "&direction=in")); len(got) != 3 {
			// first_in_last_out per local day: each punch is its device day's first.
			t.Fatalf("direction in = %v", got)
		}
		if got := ids(e.attendance("received_start=2026-03-29T12:30:00Z&sort=received_at")); len(got) != 1 || got[0] != "2026-03-29T09:00:00+09:00" {
			t.Fatalf("received since = %v", got)
		}
		e.api.Do("GET", "/v1/attendance?start_date=2026-03-29&end_date=2026-03-28", nil).ExpectError(t, 400, "invalid_parameter")
		e.api.Do("GET", "/v1/attendance?start_date=March", nil).ExpectError(t, 400, "invalid_parameter")
		e.api.Do("GET", "/v1/attendance?timezone=Mars/Base", nil).ExpectError(t, 400, "invalid_timezone")
		e.api.Do("GET", "/v1/attendance?direction=sideways", nil, apitest.Invalid()).ExpectError(t, 400, "invalid_parameter")
		e.api.Do("GET", "/v1/attendance/rejected?reason=bored", nil, apitest.Invalid()).ExpectError(t, 400, "invalid_parameter")
	})
}
