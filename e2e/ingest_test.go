package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/simulator"
)

// total reads pagination.total of a list.
func total(t *testing.T, api *apitest.Client, path string) int {
	t.Helper()
	var l struct {
		Pagination struct {
			Total int `json:"total"`
		} `json:"pagination"`
	}
	api.Do("GET", path, nil).Expect(t, http.StatusOK).JSON(t, &l)
	return l.Pagination.Total
}

// TestSimulatedFleet runs the simulator against the real binary — offline
// spells ending in backlogs, lost acknowledgements followed by resends, a
// clock 90 s fast and drifting, devices without a punch-state key — and
// checks that every record made is stored exactly once.
func TestSimulatedFleet(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		p := serve(t, t.TempDir(), env, "--device-poll-interval", "1s")
		key := p.firstKey()
		fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{
			Devices: 4, Employees: 12, PunchesPerMinute: 90, Timezone: "Asia/Kolkata",
			OfflineEvery: 4 * time.Second, OfflineFor: 1500 * time.Millisecond, LostAckRate: 0.2,
			ClockOffset: 90 * time.Second, DriftPerHour: 2 * time.Second, State255Share: 0.5, BatchSize: 7,
		}, Log: t.Logf}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		if err := fleet.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		for _, d := range fleet.Devices {
			d.KeepLog()
		}
		fleet.Run(ctx)
		// Drain what is still buffered, as devices do when they come back.
		drain, cancelDrain := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancelDrain()
		for _, d := range fleet.Devices {
			d.LostAckRate = 0
			for d.Pending() > 0 {
				if _, err := d.Upload(drain, 100); err != nil {
					t.Fatalf("%s: final upload: %v", d.Serial, err)
				}
			}
		}
		st := fleet.Totals()
		if st.Punches < 20 || st.Resent == 0 {
			t.Fatalf("the fleet did too little to prove anything: %+v", st)
		}
		api := apitest.New(t, p.URL, key)
		distinct := 0
		for _, d := range fleet.Devices {
			distinct += d.Distinct()
		}
		accepted, rejected := total(t, api, "/v1/attendance?per_page=1"), total(t, api, "/v1/attendance/rejected?per_page=1")
		if accepted+rejected != distinct {
			t.Fatalf("%d distinct records made (%d punches), %d stored (%d accepted, %d held back): re-sends must be stored once and nothing lost",
				distinct, st.Punches, accepted+rejected, accepted, rejected)
		}
		if n := total(t, api, "/v1/attendance/rejected?per_page=1&reason=duplicate_window"); n != rejected {
			t.Fatalf("%d of %d held back for another reason than the duplicate window", rejected-n, rejected)
		}
		t.Logf("fleet: %+v; accepted %d, held back %d", st, accepted, rejected)
		p.signal(syscall.SIGTERM)
	})
}

// TestKill9DuringBacklog: devices upload a backlog while the server is
// killed without warning; after a restart every acknowledged record is
// there, and the unacknowledged ones arrive once when sent again.
func TestKill9DuringBacklog(t *testing.T) {
	eachBackend(t, func(t *testing.T, env []string) {
		dir := t.TempDir()
		p := serve(t, dir, env)
		key := p.firstKey()
		fleet := &simulator.Fleet{Server: p.URL, APIKey: key, Plan: simulator.Plan{Devices: 3, Employees: 300}}
		if err := fleet.Setup(context.Background()); err != nil {
			t.Fatal(err)
		}
		base := time.Now().Add(-48 * time.Hour)
		for d, dev := range fleet.Devices {
			for i := range 3000 {
				dev.Record(fmt.Sprint(1000+(i*7+d)%300), base.Add(time.Duration(i)*time.Minute), 0, 1)
			}
		}
		var wg sync.WaitGroup
		ctx := context.Background()
		for _, dev := range fleet.Devices {
			wg.Go(func() {
				for dev.Pending() > 0 {
					if _, err := dev.Upload(ctx, 100); err != nil {
						return // the server died under it
					}
				}
			})
		}
		time.Sleep(300 * time.Millisecond)
		p.signal(syscall.SIGKILL)
		wg.Wait()
		acked := fleet.Totals().Uploaded
		if acked == 0 {
			t.Fatal("nothing was acknowledged before the kill; the test proves nothing")
		}

		p2 := serve(t, dir, env)
		api := apitest.New(t, p2.URL, key)
		stored := total(t, api, "/v1/attendance?per_page=1") + total(t, api, "/v1/attendance/rejected?per_page=1")
		if stored < acked {
			t.Fatalf("%d records acknowledged before kill -9, %d stored after restart", acked, stored)
		}
		for _, dev := range fleet.Devices {
			dev.Server = p2.URL
			for dev.Pending() > 0 {
				if _, err := dev.Upload(ctx, 100); err != nil {
					t.Fatal(err)
				}
			}
		}
		stored = total(t, api, "/v1/attendance?per_page=1") + total(t, api, "/v1/attendance/rejected?per_page=1")
		if stored != 9000 {
			t.Fatalf("%d records stored after the resend, want all 9000 exactly once", stored)
		}
		t.Logf("acknowledged before the kill: %d of 9000", acked)
		p2.signal(syscall.SIGTERM)
	})
}

// TestUnclaimedCLI: a serial no account registered shows in `devices
// unclaimed`, and none of its data reaches an account.
func TestUnclaimedCLI(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil)
	ghost := &simulator.Device{Serial: "GHOST42", Server: p.URL}
	if _, err := ghost.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	ghost.Record("1", time.Now(), 0, 1)
	if _, err := ghost.Upload(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, dir, nil, "devices", "unclaimed", "--json")
	if code != 0 {
		t.Fatalf("devices unclaimed: %d %s", code, errOut)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(out), &row); err != nil || row["serial_number"] != "GHOST42" || row["held_uploads"] != 1.0 || row["last_ip"] != "127.0.0.1" {
		t.Fatalf("devices unclaimed printed %q", out)
	}
	if n := total(t, apitest.New(t, p.URL, p.firstKey()), "/v1/attendance/rejected?per_page=1"); n != 0 {
		t.Fatal("an unclaimed serial's upload reached an account")
	}
	p.signal(syscall.SIGTERM)
}
