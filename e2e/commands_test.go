package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/simulator"
)

// TestBatchAcrossAFleet: one batch syncs the roster to five devices through
// the real binary — one answers normally, one refuses an employee, one never
// answers, one acknowledges everything twice, one never polls. Each device
// gets its own result, the failures never fail the others, the batch
// completes with its event, and retry_failed resends only what failed.
func TestBatchAcrossAFleet(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		p := serve(t, t.TempDir(), env, "--device-poll-interval", "1s")
		key := p.firstKey()
		api := apitest.New(t, p.URL, key)
		fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{Devices: 4, Employees: 30, PunchesPerMinute: 1}, Log: t.Logf}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := fleet.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		normal, picky, silent, twice := fleet.Devices[0], fleet.Devices[1], fleet.Devices[2], fleet.Devices[3]
		picky.Reply = func(c simulator.Command) int {
			if strings.Contains(c.Text, "PIN=1007\t") {
				return -1001
			}
			return 0
		}
		silent.Silent = func(simulator.Command) bool { return true }
		twice.AckTwice = true
		offline := api.Do("POST", "/v1/devices", map[string]any{"serial_number": "OFFLINE0001", "timezone": "UTC"}).Expect(t, 201).Data(t)["id"].(string)

		ids := map[*simulator.Device]string{}
		var list struct {
			Data []map[string]any `json:"data"`
		}
		api.Do("GET", "/v1/devices?per_page=10", nil).Expect(t, 200).JSON(t, &list)
		var all []string
		for _, d := range list.Data {
			all = append(all, d["id"].(string))
			for _, sd := range fleet.Devices {
				if d["serial_number"] == sd.Serial {
					ids[sd] = d["id"].(string)
				}
			}
		}
		b := api.Do("POST", "/v1/batches", map[string]any{
			"command": "sync_all_employees", "device_ids": all, "expires_at": time.Now().Add(6 * time.Second).UTC().Format(time.RFC3339),
		}).Expect(t, 201).Data(t)
		batchID := b["id"].(string)
		if len(b["devices"].([]any)) != 5 {
			t.Fatalf("batch reaches %d devices, want 5", len(b["devices"].([]any)))
		}
		go fleet.Run(ctx)
		waitUntil(t, "the batch to complete", 30*time.Second, func() bool {
			time.Sleep(200 * time.Millisecond)
			return api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)["status"] == "completed"
		})
		b = api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)
		status := map[string]map[string]any{}
		for _, d := range b["devices"].([]any) {
			status[d.(map[string]any)["device_id"].(string)] = d.(map[string]any)
		}
		want := map[string]string{ids[normal]: "succeeded", ids[picky]: "failed", ids[silent]: "expired", ids[twice]: "succeeded", offline: "expired"}
		for dev, st := range want {
			if status[dev]["status"] != st {
				t.Errorf("device %s: %v, want %s", dev, status[dev]["status"], st)
			}
		}
		if errs := status[ids[picky]]["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["badge_number"] != "1007" {
			t.Fatalf("picky device's errors %v", errs)
		}
		if !strings.Contains(status[offline]["error"].(map[string]any)["message"].(string), "did not poll") {
			t.Fatalf("offline device %v", status[offline])
		}
		if len(normal.Users()) != 30 || len(twice.Users()) != 30 {
			t.Fatalf("devices hold %d and %d users, want 30", len(normal.Users()), len(twice.Users()))
		}
		if total(t, api, "/v1/events?type=batch.completed") != 1 || total(t, api, "/v1/events?type=command.failed") != 3 {
			t.Fatal("missing batch.completed or command.failed events")
		}

		// Retry what failed, with the picky device now taking everyone.
		picky.Reply = nil
		silent.Silent = nil
		api.Do("POST", "/v1/batches/"+batchID+"/retry_failed", map[string]any{"expires_at": time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339)}).Expect(t, 200)
		waitUntil(t, "the retry to complete", 30*time.Second, func() bool {
			time.Sleep(200 * time.Millisecond)
			return api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)["status"] == "completed"
		})
		b = api.Do("GET", "/v1/batches/"+batchID, nil).Expect(t, 200).Data(t)
		pr := b["progress"].(map[string]any)
		if pr["succeeded"] != 4.0 || pr["failed"] != 1.0 { // the device that never polls stays expired
			t.Fatalf("after retry_failed %v", pr)
		}
		if _, ok := picky.Users()["1007"]; !ok {
			t.Fatal("the refused employee did not reach the device on retry")
		}
		cancel()
		p.signal(syscall.SIGTERM)
	})
}
