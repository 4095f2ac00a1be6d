package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func TestIdempotency(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		body := map[string]any{"serial_number": "BKRK233600045", "name": "Main Entrance"}

		first := e.api.Do("POST", "/v1/devices", body, apitest.IdempotencyKey("create-1")).Expect(t, http.StatusCreated)
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("the first request is not a replay")
		}
		// Same key, same request (other spacing and key order): the same answer, nothing done twice.
		again := e.api.Do("POST", "/v1/devices", nil, apitest.IdempotencyKey("create-1"),
			apitest.Raw(`{ "name": "Main Entrance",   "serial_number": "BKRK233600045" }`))
		again.Expect(t, http.StatusCreated)
		if again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("replay = %s %v, want the first body", again.Body, again.Header)
		}
		if again.Header.Get("X-Request-Id") == first.Header.Get("X-Request-Id") {
			t.Fatal("a replay is a new request and gets its own request id")
		}
		if n := e.countDevices(e.acct.ID); n != 1 {
			t.Fatalf("%d devices after a replayed create", n)
		}

		// Same key, different request.
		e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "OTHER"}, apitest.IdempotencyKey("create-1")).
			ExpectError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		e.api.Do("PATCH", "/v1/devices/"+first.Data(t)["id"].(string), map[string]any{"name": "x"}, apitest.IdempotencyKey("create-1")).
			ExpectError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")

		// Keys are per account: another account's identical key is its own.
		_, rival := e.otherAccount("Rival")
		rival.Do("POST", "/v1/devices", map[string]any{"serial_number": "RIVAL1"}, apitest.IdempotencyKey("create-1")).Expect(t, http.StatusCreated)

		t.Run("error responses replay too", func(t *testing.T) {
			r1 := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045"}, apitest.IdempotencyKey("dup"))
			r1.ExpectError(t, http.StatusConflict, "serial_number_taken")
			r2 := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045"}, apitest.IdempotencyKey("dup"))
			r2.ExpectError(t, http.StatusConflict, "serial_number_taken")
			if r2.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatal("4xx answer was not replayed")
			}
		})

		t.Run("in progress", func(t *testing.T) {
			// A first request holds the key (as if it were still running on another node).
			req := httptest.NewRequest("POST", "/v1/devices", strings.NewReader(`{"serial_number":"SLOW1"}`))
			claim, err := e.store.BeginIdempotent(context.Background(), e.acct.ID, "slow", fingerprint(req, []byte(`{"serial_number":"SLOW1"}`)))
			if err != nil || claim.Outcome != store.IdempotencyAcquired {
				t.Fatal(claim, err)
			}
			e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "SLOW1"}, apitest.IdempotencyKey("slow")).
				ExpectError(t, http.StatusConflict, "idempotency_key_in_progress")
			// The first request dies without effect and releases the key: the retry runs.
			if err := e.store.ReleaseIdempotent(context.Background(), claim.Claim); err != nil {
				t.Fatal(err)
			}
			r := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "SLOW1"}, apitest.IdempotencyKey("slow")).Expect(t, 201)
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatal("the retry ran, it is not a replay")
			}
		})

		t.Run("concurrent duplicates run once", func(t *testing.T) {
			var wg sync.WaitGroup
			statuses := make([]int, 8)
			for i := range statuses {
				wg.Go(func() {
					r := e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "777"}, apitest.IdempotencyKey("race"))
					statuses[i] = r.Status
				})
			}
			wg.Wait()
			var list struct {
				Data []any `json:"data"`
			}
			e.api.Do("GET", "/v1/employees?badge_number=777", nil).Expect(t, 200).JSON(t, &list)
			if len(list.Data) != 1 {
				t.Fatalf("%d employees from one key", len(list.Data))
			}
			for _, s := range statuses {
				if s != http.StatusCreated && s != http.StatusConflict {
					t.Fatalf("statuses %v: want 201 (first or replay) or 409 (in progress)", statuses)
				}
			}
		})

		t.Run("delete replays", func(t *testing.T) {
			id := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "GONE1"}).Expect(t, 201).Data(t)["id"].(string)
			e.api.Do("DELETE", "/v1/devices/"+id, nil, apitest.IdempotencyKey("del")).Expect(t, http.StatusOK)
			r := e.api.Do("DELETE", "/v1/devices/"+id, nil, apitest.IdempotencyKey("del")).Expect(t, http.StatusOK)
			if r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatal("second delete with the key should replay the first answer")
			}
		})

		t.Run("expires after 24 hours", func(t *testing.T) {
			e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "800"}, apitest.IdempotencyKey("day")).Expect(t, 201)
			e.clock.Advance(store.IdempotencyTTL + 1e9)
			e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "800"}, apitest.IdempotencyKey("day")).
				ExpectError(t, http.StatusConflict, "badge_number_taken")
		})

		t.Run("bad keys", func(t *testing.T) {
			e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "801"}, apitest.Invalid(),
				apitest.IdempotencyKey(strings.Repeat("k", 256))).ExpectError(t, 400, "invalid_idempotency_key")
			e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "801"}, apitest.Invalid(),
				apitest.IdempotencyKey("")).ExpectError(t, 400, "invalid_idempotency_key")
		})
	})
}

// TestIdempotencyAcrossNodes runs two servers on one database: a retry that
// lands on the other node still replays.
func TestIdempotencyAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		u := b.NewURL(t)
		clock := storetest.NewClock(storetest.Epoch)
		s1 := storetest.OpenURL(t, u, store.Options{Now: clock.Now})
		s2 := storetest.OpenURL(t, u, store.Options{Now: clock.Now})
		_, key := storetest.NewAccount(t, s1, "Acme")
		n1 := apitest.New(t, startServer(t, s1, clock).url, key)
		n2 := apitest.New(t, startServer(t, s2, clock).url, key)
		first := n1.Do("POST", "/v1/devices", map[string]any{"serial_number": "NODE1"}, apitest.IdempotencyKey("k")).Expect(t, 201)
		again := n2.Do("POST", "/v1/devices", map[string]any{"serial_number": "NODE1"}, apitest.IdempotencyKey("k")).Expect(t, 201)
		if !bytes.Equal(first.Body, again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("node 2 did not replay node 1's answer: %s", again.Body)
		}
	})
}
