package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func TestRateLimit(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		const perDevice = 5
		e := newEnv(t, b, withRateLimit(perDevice))
		e.clock.Set(time.Date(2026, 3, 28, 23, 59, 0, 0, time.UTC))
		midnight := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)

		// No devices: the minimum allowance. Every call counts, errors included.
		for i := 1; i <= perDevice; i++ {
			path := "/v1/devices"
			if i == 2 {
				path = "/v1/devices/dev_missing"
			}
			r := e.api.Do("GET", path, nil)
			if r.Header.Get("X-RateLimit-Limit") != "5" || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(perDevice-i) ||
				r.Header.Get("X-RateLimit-Reset") != strconv.FormatInt(midnight.Unix(), 10) {
				t.Fatalf("call %d headers: %v", i, r.Header)
			}
		}
		r := e.api.Do("GET", "/v1/devices", nil)
		er := r.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") != "60" || r.Header.Get("X-RateLimit-Remaining") != "0" || er.Type != "rate_limit_error" {
			t.Fatalf("429 headers %v, error %+v", r.Header, er)
		}
		// Mutations are refused too, and do nothing.
		e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "LATE"}).ExpectError(t, http.StatusTooManyRequests, "rate_limited")
		if e.countDevices(e.acct.ID) != 0 {
			t.Fatal("a rate-limited request wrote")
		}
		// Another account has its own allowance.
		_, rival := e.otherAccount("Rival")
		rival.Do("GET", "/v1/devices", nil).Expect(t, http.StatusOK)

		// The allowance renews at UTC midnight and grows with registered devices.
		e.clock.Set(midnight.Add(time.Second))
		for _, sn := range []string{"D1", "D2", "D3"} {
			if err := e.store.InTx(context.Background(), func(tx *store.Tx) error {
				_, err := tx.CreateDevice(context.Background(), e.acct.ID, attendance.DeviceInput{SerialNumber: attendance.Some(sn), Timezone: attendance.Some("UTC")})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		r = e.api.Do("GET", "/v1/devices", nil).Expect(t, http.StatusOK)
		if r.Header.Get("X-RateLimit-Limit") != "15" || r.Header.Get("X-RateLimit-Remaining") != "14" {
			t.Fatalf("after midnight with 3 devices: %v", r.Header)
		}
	})
}

// TestRateLimitAcrossNodes: two servers on one database share the counter.
func TestRateLimitAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		u := b.NewURL(t)
		clock := storetest.NewClock(storetest.Epoch)
		s1 := storetest.OpenURL(t, u, store.Options{Now: clock.Now})
		s2 := storetest.OpenURL(t, u, store.Options{Now: clock.Now})
		_, key := storetest.NewAccount(t, s1, "Acme")
		n1 := apitest.New(t, startServer(t, s1, clock, withRateLimit(4)).url, key)
		n2 := apitest.New(t, startServer(t, s2, clock, withRateLimit(4)).url, key)
		for i := range 4 {
			node := n1
			if i%2 == 1 {
				node = n2
			}
			node.Do("GET", "/v1/devices", nil).Expect(t, http.StatusOK)
		}
		n1.Do("GET", "/v1/devices", nil).ExpectError(t, http.StatusTooManyRequests, "rate_limited")
		n2.Do("GET", "/v1/devices", nil).ExpectError(t, http.StatusTooManyRequests, "rate_limited")
	})
}

func TestDefaultRateLimit(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	r := e.api.Do("GET", "/v1/settings", nil).Expect(t, http.StatusOK)
	if r.Header.Get("X-RateLimit-Limit") != "1000" || r.Header.Get("X-RateLimit-Remaining") != "999" {
		t.Fatalf("default allowance: %v", r.Header)
	}
}
