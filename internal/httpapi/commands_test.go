package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/simulator"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// poll makes the device fetch and answer its commands once.
func poll(t *testing.T, d *simulator.Device) []simulator.Command {
	t.Helper()
	cmds, err := d.Heartbeat(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return cmds
}

func (e *testEnv) command(id string) map[string]any {
	e.t.Helper()
	return e.api.Do("GET", "/v1/commands/"+id, nil).Expect(e.t, 200).Data(e.t)
}

func progressOf(v map[string]any) string {
	p := v["progress"].(map[string]any)
	return fmt.Sprintf("%v/%v/%v/%v", p["total"], p["succeeded"], p["failed"], p["pending"])
}

func (e *testEnv) expire() {
	e.t.Helper()
	if _, err := commands.Expire(context.Background(), e.store, 100); err != nil {
		e.t.Fatal(err)
	}
}

func TestDeviceCommands(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		dev, devID := e.device("CMD0000001", "Europe/Paris", nil)
		if _, err := dev.Handshake(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1042", "name": "Sarah Chen", "card_number": "0012345678"}).Expect(t, 201)

		// A sync: what the request leaves out comes from the employee record.
		c := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "sync_employees", "payload": map[string]any{
			"employees": []any{
				map[string]any{"badge_number": "1042"},
				map[string]any{"badge_number": "1043", "name": "Ana  Maria de los Angeles Fernandez", "privilege": "admin", "password": "1234"},
			},
		}}).Expect(t, 201).Data(t)
		if c["status"] != "queued" || progressOf(c) != "2/0/0/2" || c["device_id"] != devID {
			t.Fatalf("created %v", c)
		}
		if emps := c["payload"].(map[string]any)["employees"].([]any); emps[1].(map[string]any)["password"] != "********" {
			t.Fatalf("a password was shown back: %v", emps[1])
		}
		got := poll(t, dev)
		if len(got) != 2 ||
			got[0].Text != "DATA UPDATE USERINFO PIN=1042\tName=Sarah Chen\tCard=0012345678" ||
			got[1].Text != "DATA UPDATE USERINFO PIN=1043\tName=Ana Maria de los Angeles\tPri=14\tPasswd=1234" {
			t.Fatalf("device got %q", got)
		}
		if len(got[0].ID) > 16 {
			t.Fatalf("command ID %q longer than firmware keeps", got[0].ID)
		}
		c = e.command(c["id"].(string))
		if c["status"] != "succeeded" || progressOf(c) != "2/2/0/0" || c["completed_at"] == nil || c["sent_at"] == nil {
			t.Fatalf("after the device answered: %v", c)
		}
		if evs := e.events("command.succeeded"); len(evs) != 1 {
			t.Fatalf("%d command.succeeded events", len(evs))
		}

		// An unsupported command fails with the device's code and a reason.
		dev.Reply = func(c simulator.Command) int {
			if c.Text == "AC_UNLOCK" {
				return -1002
			}
			return 0
		}
		u := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "unlock_door", "payload": map[string]any{"seconds": 5}}).Expect(t, 201).Data(t)
		poll(t, dev)
		u = e.command(u["id"].(string))
		if u["status"] != "failed" || u["return_code"] != -1002.0 || u["error"].(map[string]any)["code"] != "not_supported" {
			t.Fatalf("unsupported command: %v", u)
		}
		if evs := e.events("command.failed"); len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]), "not_supported") {
			t.Fatalf("command.failed events %v", evs)
		}
		dev.Reply = nil

		// REBOOT ends a reply; what follows waits for the next poll.
		var ids []string
		for _, k := range []string{"info", "reboot", "set_time"} {
			ids = append(ids, e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": k}).Expect(t, 201).Data(t)["id"].(string))
		}
		got = poll(t, dev)
		if len(got) != 2 || got[0].Text != "INFO" || got[1].Text != "REBOOT" {
			t.Fatalf("first reply %q", got)
		}
		got = poll(t, dev)
		if len(got) != 1 || got[0].Text != "CHECK" {
			t.Fatalf("second reply %q", got)
		}
		for _, id := range ids {
			if st := e.command(id)["status"]; st != "succeeded" {
				t.Fatalf("%s: %v", id, st)
			}
		}

		// A line the device never answers is sent again after the resend
		// delay; its answer then completes the command.
		dev.Silent = func(simulator.Command) bool { return true }
		s := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "info"}).Expect(t, 201).Data(t)
		if got := poll(t, dev); len(got) != 1 {
			t.Fatalf("sent %q", got)
		}
		if st := e.command(s["id"].(string))["status"]; st != "sent" {
			t.Fatalf("status %v", st)
		}
		dev.Silent = nil
		if got := poll(t, dev); len(got) != 0 {
			t.Fatalf("resent too early: %q", got)
		}
		e.clock.Advance(61 * time.Second)
		if got := poll(t, dev); len(got) != 1 || got[0].Text != "INFO" {
			t.Fatalf("not resent: %q", got)
		}
		if st := e.command(s["id"].(string))["status"]; st != "succeeded" {
			t.Fatalf("after the resend: %v", st)
		}

		// A device that acknowledges twice changes nothing the second time.
		dev.AckTwice = true
		tw := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "delete_employees", "payload": map[string]any{"badge_numbers": []string{"1043", "9999"}}}).Expect(t, 201).Data(t)
		poll(t, dev)
		dev.AckTwice = false
		if tw = e.command(tw["id"].(string)); tw["status"] != "succeeded" || progressOf(tw) != "2/2/0/0" {
			t.Fatalf("delete (one badge absent from the device, reported twice): %v", tw)
		}
		if _, ok := dev.Users()["1043"]; ok {
			t.Fatal("1043 still on the device")
		}

		// Expiry: a command its device never fetches.
		x := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "reboot", "expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}).Expect(t, 201).Data(t)
		e.clock.Advance(2 * time.Hour)
		e.expire()
		x = e.command(x["id"].(string))
		if x["status"] != "expired" || x["error"].(map[string]any)["code"] != "expired" || !strings.Contains(x["error"].(map[string]any)["message"].(string), "did not poll") {
			t.Fatalf("expired command %v", x)
		}
		if got := poll(t, dev); len(got) != 0 {
			t.Fatalf("an expired command was sent: %q", got)
		}

		// Lists.
		var list struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("GET", "/v1/devices/"+devID+"/commands?status=failed", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["command"] != "unlock_door" {
			t.Fatalf("failed commands %v", list.Data)
		}
		e.api.Do("GET", "/v1/devices/"+devID+"/commands?command=reboot&sort=-created_at", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 2 || list.Data[0]["id"] != x["id"] {
			t.Fatalf("reboots %v", list.Data)
		}

		// Another account reaches none of it.
		_, other := e.otherAccount("Other")
		other.Do("GET", "/v1/commands/"+x["id"].(string), nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "reboot"}).ExpectError(t, 404, "resource_not_found")
		other.Do("GET", "/v1/devices/"+devID+"/commands", nil).ExpectError(t, 404, "resource_not_found")
	})
}

func TestCommandValidation(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	_, devID := e.device("VAL0000001", "UTC", nil)
	path := "/v1/devices/" + devID + "/commands"
	for _, c := range []struct {
		body        map[string]any
		code, param string
	}{
		{map[string]any{"command": "shell", "payload": map[string]any{}}, "unknown_command", "command"},
		{map[string]any{"payload": map[string]any{}}, "missing_parameter", "command"},
		{map[string]any{"command": "sync_employees"}, "missing_parameter", "payload.employees"},
		{map[string]any{"command": "sync_employees", "payload": map[string]any{"employees": []any{map[string]any{"name": "x"}}}}, "missing_parameter", "payload.employees[0].badge_number"},
		{map[string]any{"command": "sync_employees", "payload": map[string]any{"employees": []any{map[string]any{"badge_number": "1", "privilege": "root"}}}}, "invalid_parameter", "payload.employees[0].privilege"},
		{map[string]any{"command": "sync_employees", "payload": map[string]any{"employees": []any{map[string]any{"badge_number": "1 2"}}}}, "invalid_parameter", "payload.employees[0].badge_number"},
		{map[string]any{"command": "sync_employees", "payload": map[string]any{"employees": []any{map[string]any{"badge_number": "1"}, map[string]any{"badge_number": "1"}}}}, "duplicate_in_batch", "payload.employees[1].badge_number"},
		{map[string]any{"command": "unlock_door", "payload": map[string]any{"seconds": 255}}, "invalid_parameter", "payload.seconds"},
		{map[string]any{"command": "unlock_door"}, "missing_parameter", "payload.seconds"},
		{map[string]any{"command": "reboot", "payload": map[string]any{"force": true}}, "unknown_parameter", "payload.force"},
		{map[string]any{"command": "reupload", "payload": map[string]any{"start": "2026-03-28T10:00:00Z", "end": "2026-03-28T09:00:00Z"}}, "invalid_parameter", "payload.end"},
		{map[string]any{"command": "reupload", "payload": map[string]any{"start": "yesterday", "end": "2026-03-28T09:00:00Z"}}, "invalid_parameter", "payload.start"},
		{map[string]any{"command": "reboot", "expires_at": "2020-01-01T00:00:00Z"}, "invalid_parameter", "expires_at"},
		{map[string]any{"command": "delete_employees", "payload": map[string]any{"badge_numbers": []string{}}}, "missing_parameter", "payload.badge_numbers"},
	} {
		er := e.api.Do("POST", path, c.body, apitest.Invalid()).ExpectError(t, 400, c.code)
		if er.Param == nil || *er.Param != c.param {
			t.Errorf("%v: param %v, want %s (%s)", c.body, er.Param, c.param, er.Message)
		}
	}
	// The same Idempotency-Key does not queue a command twice.
	a := e.api.Do("POST", path, map[string]any{"command": "reboot"}, apitest.IdempotencyKey("reboot-1")).Expect(t, 201)
	b := e.api.Do("POST", path, map[string]any{"command": "reboot"}, apitest.IdempotencyKey("reboot-1")).Expect(t, 201)
	if string(a.Body) != string(b.Body) || b.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("a retried command was queued again")
	}
	var list struct {
		Data []map[string]any `json:"data"`
	}
	e.api.Do("GET", path, nil).Expect(t, 200).JSON(t, &list)
	if len(list.Data) != 1 {
		t.Fatalf("%d commands after a retried request", len(list.Data))
	}
}

// TestReplyLimits: at most 200 lines go out per poll, in order.
func TestReplyLimits(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	dev, devID := e.device("LIM0000001", "UTC", nil)
	if _, err := dev.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	var emps []any
	for i := range 450 {
		emps = append(emps, map[string]any{"badge_number": fmt.Sprint(5000 + i), "name": fmt.Sprintf("Employee %d", i)})
	}
	c := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "sync_employees", "payload": map[string]any{"employees": emps}}).Expect(t, 201).Data(t)
	var seen []string
	for _, want := range []int{200, 200, 50, 0} {
		got := poll(t, dev)
		if len(got) != want {
			t.Fatalf("poll gave %d lines, want %d", len(got), want)
		}
		for _, g := range got {
			seen = append(seen, strings.Fields(g.Text)[3])
		}
	}
	for i, s := range seen {
		if s != fmt.Sprintf("PIN=%d", 5000+i) {
			t.Fatalf("line %d is %s: out of order", i, s)
		}
	}
	if c = e.command(c["id"].(string)); c["status"] != "succeeded" || progressOf(c) != "450/450/0/0" || len(dev.Users()) != 450 {
		t.Fatalf("after three polls: %v, %d users", c, len(dev.Users()))
	}
}

// TestReupload: the device sends a time range again; the records go through
// ingest, which recognises them.
func TestReupload(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	dev, devID := e.device("REU0000001", "UTC", nil)
	if _, err := dev.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.employee("1042", "Sarah Chen")
	base := e.clock.Now().Add(-3 * time.Hour)
	for i := range 3 {
		dev.Record("1042", base.Add(time.Duration(i)*time.Hour), 0, 1)
	}
	if _, err := dev.Upload(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	c := e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "reupload", "payload": map[string]any{
		"start": base.Add(-time.Minute).Format(time.RFC3339), "end": base.Add(90 * time.Minute).Format(time.RFC3339),
	}}).Expect(t, 201).Data(t)
	got := poll(t, dev)
	want := fmt.Sprintf("DATA QUERY ATTLOG StartTime=%s\tEndTime=%s", base.Add(-time.Minute).Format("2006-01-02 15:04:05"), base.Add(90*time.Minute).Format("2006-01-02 15:04:05"))
	if len(got) != 1 || got[0].Text != want {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if dev.Pending() != 2 {
		t.Fatalf("the device queued %d records again, want 2", dev.Pending())
	}
	if _, err := dev.Upload(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if n := e.attendance("").Pagination.Total; n != 3 {
		t.Fatalf("%d punches after the re-upload, want the same 3", n)
	}
	if st := e.command(c["id"].(string))["status"]; st != "succeeded" {
		t.Fatalf("reupload %v", st)
	}
}

func TestBatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ok, okID := e.device("BAT0000001", "UTC", nil)
		picky, pickyID := e.device("BAT0000002", "UTC", nil)
		for _, d := range []*simulator.Device{ok, picky} {
			if _, err := d.Handshake(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		_, offID := e.device("BAT0000003", "UTC", nil) // never polls
		picky.Reply = func(c simulator.Command) int {
			if strings.Contains(c.Text, "PIN=2002") {
				return -1001
			}
			return 0
		}
		payload := map[string]any{"employees": []any{map[string]any{"badge_number": "2001", "name": "A"}, map[string]any{"badge_number": "2002", "name": "B"}}}
		bt := e.api.Do("POST", "/v1/batches", map[string]any{
			"command": "sync_employees", "payload": payload, "device_ids": []string{okID, pickyID, offID},
			"expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339),
		}).Expect(t, 201).Data(t)
		batchID := bt["id"].(string)
		if bt["status"] != "running" || progressOf(bt) != "3/0/0/3" || len(bt["devices"].([]any)) != 3 {
			t.Fatalf("created %v", bt)
		}
		poll(t, ok)
		poll(t, picky)
		bt = e.api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)
		items := bt["items"].(map[string]any)
		if progressOf(bt) != "3/1/1/1" || items["total"] != 6.0 || items["succeeded"] != 3.0 || items["failed"] != 1.0 || items["pending"] != 2.0 {
			t.Fatalf("progress %v items %v", bt["progress"], items)
		}
		var pickyCmd map[string]any
		for _, d := range bt["devices"].([]any) {
			if d.(map[string]any)["device_id"] == pickyID {
				pickyCmd = d.(map[string]any)
			}
		}
		errs := pickyCmd["errors"].([]any)
		if pickyCmd["status"] != "failed" || len(errs) != 1 || errs[0].(map[string]any)["badge_number"] != "2002" || errs[0].(map[string]any)["code"] != "device_full" {
			t.Fatalf("picky device %v", pickyCmd)
		}
		if len(e.events("batch.completed")) != 0 {
			t.Fatal("completed with a device pending")
		}
		// The silent device's command expires; the batch completes.
		e.clock.Advance(2 * time.Hour)
		e.expire()
		bt = e.api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)
		if bt["status"] != "completed" || progressOf(bt) != "3/1/2/0" {
			t.Fatalf("after expiry %v", bt)
		}
		if evs := e.events("batch.completed"); len(evs) != 1 {
			t.Fatalf("%d batch.completed events", len(evs))
		}
		// Retry what failed: the one refused item, and the expired device's whole sync.
		picky.Reply = nil
		bt = e.api.Do("POST", "/v1/batches/"+batchID+"/retry_failed", nil).Expect(t, 200).Data(t)
		if bt["status"] != "running" || progressOf(bt) != "3/1/0/2" {
			t.Fatalf("after retry_failed %v", bt)
		}
		got := poll(t, picky)
		if len(got) != 1 || !strings.Contains(got[0].Text, "PIN=2002\tName=B") {
			t.Fatalf("retried lines %q", got)
		}
		bt = e.api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)
		if progressOf(bt) != "3/2/0/1" {
			t.Fatalf("after the retry %v", bt)
		}
		var list struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("GET", "/v1/batches", nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 1 || progressOf(list.Data[0]) != "3/2/0/1" {
			t.Fatalf("batch list %v", list.Data)
		}

		// By site; unknown devices are named.
		st := e.api.Do("POST", "/v1/batches", map[string]any{"command": "reboot", "site": "HQ"}).Expect(t, 201).Data(t)
		if len(st["devices"].([]any)) != 3 {
			t.Fatalf("site batch %v", st)
		}
		er := e.api.Do("POST", "/v1/batches", map[string]any{"command": "reboot", "device_ids": []string{okID, "dev_01jq3v8c1kfx9b7n2m4p6r8t0w"}}).ExpectError(t, 404, "resource_not_found")
		if *er.Param != "device_ids[1]" {
			t.Fatalf("param %s", *er.Param)
		}
		e.api.Do("POST", "/v1/batches", map[string]any{"command": "reboot", "site": "Nowhere"}).ExpectError(t, 400, "invalid_parameter")
		e.api.Do("POST", "/v1/batches", map[string]any{"command": "reboot"}, apitest.Invalid()).ExpectError(t, 400, "missing_parameter")
		_, other := e.otherAccount("Other")
		other.Do("GET", "/v1/batches/"+batchID, nil).ExpectError(t, 404, "resource_not_found")
		other.Do("POST", "/v1/batches", map[string]any{"command": "reboot", "device_ids": []string{okID}}).ExpectError(t, 404, "resource_not_found")
	})
}

// TestAutoSync: with the setting on, employee changes reach the devices;
// rapid changes to one employee coalesce into the newest.
func TestAutoSync(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		dev, _ := e.device("AUT0000001", "UTC", nil)
		if _, err := dev.Handshake(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Off by default: nothing is queued.
		e.employee("3001", "Before")
		if got := poll(t, dev); len(got) != 0 {
			t.Fatalf("queued with the setting off: %q", got)
		}
		if s := e.api.Do("PATCH", "/v1/settings", map[string]any{"auto_sync_employees": true}).Expect(t, 200).Data(t); s["auto_sync_employees"] != true {
			t.Fatalf("settings %v", s)
		}
		empID := e.employee("3002", "Ana")
		e.api.Do("PATCH", "/v1/employees/"+empID, map[string]any{"name": "Ana Maria"}).Expect(t, 200)
		e.api.Do("PATCH", "/v1/employees/"+empID, map[string]any{"department": "Ops"}).Expect(t, 200) // nothing a device holds
		got := poll(t, dev)
		if len(got) != 1 || got[0].Text != "DATA UPDATE USERINFO PIN=3002\tName=Ana Maria" {
			t.Fatalf("coalesced sync %q", got)
		}
		// Deactivated, then deleted: removed from the device, once.
		e.api.Do("PATCH", "/v1/employees/"+empID, map[string]any{"active": false}).Expect(t, 200)
		e.api.Do("DELETE", "/v1/employees/"+empID, nil).Expect(t, 200)
		got = poll(t, dev)
		if len(got) != 1 || got[0].Text != "DATA DELETE USERINFO PIN=3002" {
			t.Fatalf("removal %q", got)
		}
		// A batch upsert sends only what changed.
		e.api.Do("POST", "/v1/employees/batch", map[string]any{"employees": []any{
			map[string]any{"badge_number": "3001", "name": "Before"},
			map[string]any{"badge_number": "3003", "name": "New"},
		}}).Expect(t, 200)
		got = poll(t, dev)
		if len(got) != 1 || got[0].Text != "DATA UPDATE USERINFO PIN=3003\tName=New" {
			t.Fatalf("batch upsert sync %q", got)
		}
	})
}

// TestSecurityDialect: a Security PUSH device gets the 3.x syntax, and
// set_time carries the time when the line is sent, in the device's zone.
func TestSecurityDialect(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	dev, devID := e.device("ACC0000009", "Asia/Kolkata", nil)
	if status, reply := e.post("/iclock/registry?SN=ACC0000009", "DeviceType=acc,~DeviceName=SpeedFace-V5L,FirmVer=ZAM180-NF-Ver1.1.17"); status != 200 || !strings.HasPrefix(reply, "RegistryCode=") {
		t.Fatalf("registry %d %q", status, reply)
	}
	for _, body := range []map[string]any{
		{"command": "sync_employees", "payload": map[string]any{"employees": []any{map[string]any{"badge_number": "7", "name": "Ravi", "card": "99"}}}},
		{"command": "unlock_door", "payload": map[string]any{"seconds": 10}},
		{"command": "set_time"},
	} {
		e.api.Do("POST", "/v1/devices/"+devID+"/commands", body).Expect(t, 201)
	}
	e.clock.Advance(10 * time.Minute) // sent later than queued
	got := poll(t, dev)
	local := e.clock.Now().In(mustZone(t, "Asia/Kolkata"))
	want := []string{
		"DATA UPDATE user Pin=7\tName=Ravi\tCardNo=99",
		"CONTROL DEVICE 0101010A",
		fmt.Sprintf("SET OPTIONS DateTime=%d", encodeZK(local)),
	}
	if len(got) != 3 {
		t.Fatalf("got %q", got)
	}
	for i, w := range want {
		if got[i].Text != w {
			t.Errorf("line %d: %q, want %q", i, got[i].Text, w)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// encodeZK is the ZK time encoding (PUSH protocol §15), written out here
// independently of the gateway's.
func encodeZK(t time.Time) int64 {
	return ((int64(t.Year()%100)*12*31+int64(t.Month()-1)*31+int64(t.Day()-1))*(24*60*60) +
		(int64(t.Hour())*60+int64(t.Minute()))*60 + int64(t.Second()))
}
