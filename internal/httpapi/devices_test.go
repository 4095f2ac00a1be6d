package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func TestDevices(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		created := e.api.Do("POST", "/v1/devices", map[string]any{
			"serial_number": "bkrk233600045", "name": "Main Entrance", "site": "Headquarters", "timezone": "Europe/Paris",
		}).Expect(t, http.StatusCreated).Data(t)
		id := created["id"].(string)
		want := map[string]any{
			"object": "device", "serial_number": "BKRK233600045", "name": "Main Entrance", "site": "Headquarters",
			"timezone": "Europe/Paris", "direction_mode": nil, "status": "pending", "last_seen_at": nil,
			"clock_offset_seconds": nil, "firmware": nil, "created_at": "2026-03-28T08:00:00Z",
		}
		for k, v := range want {
			if created[k] != v {
				t.Errorf("%s = %v, want %v", k, created[k], v)
			}
		}

		got := e.api.Do("GET", "/v1/devices/"+id, nil).Expect(t, http.StatusOK).Data(t)
		if got["id"] != id || got["name"] != "Main Entrance" {
			t.Fatalf("GET = %v", got)
		}

		e.clock.Advance(90e9)
		patched := e.api.Do("PATCH", "/v1/devices/"+id, map[string]any{"name": "Side Door", "direction_mode": "alternating"}).
			Expect(t, http.StatusOK).Data(t)
		if patched["name"] != "Side Door" || patched["direction_mode"] != "alternating" || patched["site"] != "Headquarters" ||
			patched["updated_at"] != "2026-03-28T08:01:30Z" {
			t.Fatalf("PATCH = %v", patched)
		}
		patched = e.api.Do("PATCH", "/v1/devices/"+id, map[string]any{"direction_mode": nil}).Expect(t, http.StatusOK).Data(t)
		if patched["direction_mode"] != nil {
			t.Fatalf("direction_mode not cleared: %v", patched)
		}

		// A device without a timezone takes the account's.
		e.api.Do("PATCH", "/v1/settings", map[string]any{"timezone": "Asia/Kolkata"}).Expect(t, http.StatusOK)
		second := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "CQZ7232260011"}).Expect(t, http.StatusCreated).Data(t)
		if second["timezone"] != "Asia/Kolkata" || second["name"] != "" {
			t.Fatalf("second device = %v", second)
		}

		var list struct {
			Data       []map[string]any `json:"data"`
			Pagination map[string]any   `json:"pagination"`
		}
		e.api.Do("GET", "/v1/devices?sort=-serial_number", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 2 || list.Data[0]["serial_number"] != "CQZ7232260011" || list.Pagination["total"] != 2.0 ||
			list.Pagination["page"] != 1.0 || list.Pagination["next_cursor"] != nil {
			t.Fatalf("list = %+v", list)
		}
		e.api.Do("GET", "/v1/devices?site=Headquarters", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != id {
			t.Fatalf("site filter = %+v", list)
		}

		del := e.api.Do("DELETE", "/v1/devices/"+id, nil).Expect(t, http.StatusOK).Data(t)
		if del["id"] != id || del["deleted"] != true || del["object"] != "device" {
			t.Fatalf("DELETE = %v", del)
		}
		e.api.Do("GET", "/v1/devices/"+id, nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
		e.api.Do("DELETE", "/v1/devices/"+id, nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
		e.api.Do("GET", "/v1/devices/not-an-id", nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
	})
}

func TestAccountIsolation(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		dev := e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045"}).Expect(t, http.StatusCreated).Data(t)
		emp := e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1042", "name": "Sarah Chen"}).Expect(t, http.StatusCreated).Data(t)
		rivalAcct, rival := e.otherAccount("Rival")

		for _, tc := range []struct{ method, path string }{
			{"GET", "/v1/devices/" + dev["id"].(string)},
			{"PATCH", "/v1/devices/" + dev["id"].(string)},
			{"DELETE", "/v1/devices/" + dev["id"].(string)},
			{"GET", "/v1/employees/" + emp["id"].(string)},
			{"PATCH", "/v1/employees/" + emp["id"].(string)},
			{"DELETE", "/v1/employees/" + emp["id"].(string)},
		} {
			var body any
			if tc.method == "PATCH" {
				body = map[string]any{"name": "Stolen"}
			}
			r := rival.Do(tc.method, tc.path, body)
			er := r.ExpectError(t, http.StatusNotFound, "resource_not_found")
			if strings.Contains(string(r.Body), "Sarah") || strings.Contains(string(r.Body), "BKRK") {
				t.Fatalf("%s %s leaks data: %s", tc.method, tc.path, r.Body)
			}
			_ = er
		}
		var list struct {
			Data []any `json:"data"`
		}
		rival.Do("GET", "/v1/devices", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Fatalf("rival lists devices: %v", list.Data)
		}
		rival.Do("GET", "/v1/employees?badge_number=1042", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Fatalf("rival lists employees: %v", list.Data)
		}

		// Claiming a serial another account holds is a 409 that names nobody.
		r := rival.Do("POST", "/v1/devices", map[string]any{"serial_number": "bkrk233600045"})
		er := r.ExpectError(t, http.StatusConflict, "serial_number_taken")
		if strings.Contains(er.Message, dev["id"].(string)) || strings.Contains(er.Message, e.acct.ID) || strings.Contains(er.Message, "Acme") {
			t.Fatalf("409 leaks the owner: %s", er.Message)
		}
		if e.countDevices(rivalAcct.ID) != 0 {
			t.Fatal("the refused device was created")
		}
		// The owner's own duplicate says which device has it.
		er = e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "BKRK233600045"}).ExpectError(t, http.StatusConflict, "serial_number_taken")
		if !strings.Contains(er.Message, dev["id"].(string)) {
			t.Fatalf("own 409 should name the device: %s", er.Message)
		}
		// The same badge in another account is another employee.
		rival.Do("POST", "/v1/employees", map[string]any{"badge_number": "1042"}).Expect(t, http.StatusCreated)
		got := e.api.Do("GET", "/v1/employees/"+emp["id"].(string), nil).Expect(t, http.StatusOK).Data(t)
		if got["name"] != "Sarah Chen" {
			t.Fatalf("owner's employee changed: %v", got)
		}
	})
}

func TestAuthentication(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		for _, tc := range []struct {
			name string
			opts []apitest.Option
			code string
		}{
			{"no header", []apitest.Option{apitest.NoAuth(), apitest.Invalid()}, "missing_api_key"},
			{"basic scheme", []apitest.Option{apitest.NoAuth(), apitest.Invalid(), apitest.Header("Authorization", "Basic dXNlcjpwYXNz")}, "missing_api_key"},
			{"empty bearer", []apitest.Option{apitest.NoAuth(), apitest.Invalid(), apitest.Header("Authorization", "Bearer ")}, "missing_api_key"},
			{"wrong key", []apitest.Option{apitest.NoAuth(), apitest.Invalid(), apitest.Header("Authorization", "Bearer pcsk_nope")}, "invalid_api_key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.api.Do("GET", "/v1/devices", nil, tc.opts...)
				er := r.ExpectError(t, http.StatusUnauthorized, tc.code)
				if er.RequestID != r.Header.Get("X-Request-Id") || er.RequestID == "" {
					t.Fatalf("request_id %q, header %q", er.RequestID, r.Header.Get("X-Request-Id"))
				}
				if r.Header.Get("X-RateLimit-Limit") != "" {
					t.Fatal("an unauthenticated call must not count against any account")
				}
			})
		}
		// Scheme is case-insensitive, as RFC 9110 says.
		e.api.Do("GET", "/v1/devices", nil, apitest.NoAuth(), apitest.Header("Authorization", "bearer "+e.key)).Expect(t, http.StatusOK)
		// The OpenAPI document is public.
		e.api.Do("GET", "/v1/openapi.json", nil, apitest.NoAuth()).Expect(t, http.StatusOK)
	})
}
