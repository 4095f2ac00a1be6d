package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/simulator"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestBacklogMetrics: /metrics carries the queues operators alert on —
// waiting deliveries and the age of the oldest, endpoints by state, devices
// by status, open commands — read from the database, so every node of a
// cluster reports the same values.
func TestBacklogMetrics(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, allowPrivate())
		scrape := func() string {
			t.Helper()
			code, body := e.get("/metrics")
			if code != http.StatusOK {
				t.Fatalf("/metrics = %d", code)
			}
			return body
		}
		expect := func(body string, lines ...string) {
			t.Helper()
			for _, l := range lines {
				if !strings.Contains(body, "\n"+l+"\n") {
					t.Errorf("/metrics lacks %q", l)
				}
			}
		}
		expect(scrape(),
			"punchconnect_deliveries_pending 0", "punchconnect_deliveries_oldest_pending_seconds 0",
			`punchconnect_devices{status="online"} 0`, `punchconnect_webhook_endpoints{state="healthy"} 0`)

		e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"device.status"}}).Expect(t, 201)
		gone := e.api.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/other", "events": []string{"device.status"}}).Expect(t, 201).Data(t)
		e.api.Do("PATCH", "/v1/webhooks/"+gone["id"].(string), map[string]any{"enabled": false}).Expect(t, 200)
		d, devID := e.device("MET0001", "UTC", nil)
		e.device("MET0002", "UTC", nil)
		e.recordEvents(statusEvent(e.acct.ID, devID, e.clock.Now()))
		e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "info"}).Expect(t, 201)
		d.Silent = func(simulator.Command) bool { return true } // takes it, never answers
		poll(t, d)                                              // the device comes online (a device.status event) and takes the command
		e.api.Do("POST", "/v1/devices/"+devID+"/commands", map[string]any{"command": "reboot"}).Expect(t, 201)

		// The first read is reused for a few seconds; the clock moves on.
		e.clock.Advance(90 * time.Second)
		expect(scrape(),
			"punchconnect_deliveries_pending 2", "punchconnect_deliveries_oldest_pending_seconds 90",
			`punchconnect_webhook_endpoints{state="healthy"} 1`, `punchconnect_webhook_endpoints{state="disabled"} 1`,
			`punchconnect_webhook_endpoints{state="failing"} 0`,
			`punchconnect_devices{status="online"} 1`, `punchconnect_devices{status="pending"} 1`,
			`punchconnect_commands_open{status="queued"} 1`, `punchconnect_commands_open{status="sent"} 1`,
			"punchconnect_notifications_pending 0", "punchconnect_replays_running 0")
	})
}
