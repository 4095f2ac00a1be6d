package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestBadInput sends malformed and invalid requests: each must get a 4xx with
// the documented error object naming the parameter, and write nothing.
func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.api.Do("POST", "/v1/devices", map[string]any{"serial_number": "TAKEN1"}).Expect(t, http.StatusCreated)
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1"}).Expect(t, http.StatusCreated)
		huge := `{"name": "` + strings.Repeat("x", 1<<20) + `", "serial_number": "A"}`

		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, param              string
		}{
			{"malformed JSON", "POST", "/v1/devices", `{"serial_number": "A",}`, 400, "invalid_json", ""},
			{"truncated JSON", "POST", "/v1/devices", `{"serial_number": "A"`, 400, "invalid_json", ""},
			{"not an object", "POST", "/v1/devices", `["A"]`, 400, "invalid_json", ""},
			{"two objects", "POST", "/v1/devices", `{"serial_number": "A"} {"serial_number": "B"}`, 400, "invalid_json", ""},
			{"unknown field", "POST", "/v1/devices", `{"serial_number": "A", "nmae": "x"}`, 400, "unknown_parameter", "nmae"},
			{"wrong type", "POST", "/v1/devices", `{"serial_number": 12345}`, 400, "invalid_parameter", "serial_number"},
			{"null name", "POST", "/v1/devices", `{"serial_number": "A", "name": null}`, 400, "invalid_parameter", "name"},
			{"read-only field", "POST", "/v1/devices", `{"serial_number": "A", "status": "online"}`, 400, "read_only_parameter", "status"},
			{"missing serial", "POST", "/v1/devices", `{"name": "x"}`, 400, "missing_parameter", "serial_number"},
			{"empty body", "POST", "/v1/devices", ``, 400, "missing_parameter", "serial_number"},
			{"bad serial", "POST", "/v1/devices", `{"serial_number": "A B"}`, 400, "invalid_parameter", "serial_number"},
			{"invalid timezone", "POST", "/v1/devices", `{"serial_number": "A", "timezone": "Mars/Olympus"}`, 400, "invalid_timezone", "timezone"},
			{"offset timezone", "POST", "/v1/devices", `{"serial_number": "A", "timezone": "+05:30"}`, 400, "invalid_timezone", "timezone"},
			{"Local timezone", "POST", "/v1/devices", `{"serial_number": "A", "timezone": "Local"}`, 400, "invalid_timezone", "timezone"},
			{"bad direction", "POST", "/v1/devices", `{"serial_number": "A", "direction_mode": "sideways"}`, 400, "invalid_parameter", "direction_mode"},
			{"duplicate serial", "POST", "/v1/devices", `{"serial_number": "taken1"}`, 409, "serial_number_taken", "serial_number"},
			{"oversized body", "POST", "/v1/devices", huge, 413, "body_too_large", ""},
			{"name with newline", "POST", "/v1/employees", `{"badge_number": "2", "name": "a\nb"}`, 400, "invalid_parameter", "name"},
			{"name too long", "POST", "/v1/employees", `{"badge_number": "2", "name": "` + strings.Repeat("é", 101) + `"}`, 400, "invalid_parameter", "name"},
			{"duplicate badge", "POST", "/v1/employees", `{"badge_number": "1"}`, 409, "badge_number_taken", "badge_number"},
			{"bad email", "POST", "/v1/employees", `{"badge_number": "2", "email": "Sarah <s@x.com>"}`, 400, "invalid_parameter", "email"},
			{"active as string", "POST", "/v1/employees", `{"badge_number": "2", "active": "yes"}`, 400, "invalid_parameter", "active"},
			{"metadata not strings", "POST", "/v1/employees", `{"badge_number": "2", "metadata": {"a": 1}}`, 400, "invalid_parameter", "metadata"},
			{"empty external_id", "POST", "/v1/employees", `{"badge_number": "2", "external_id": ""}`, 400, "invalid_parameter", "external_id"},
			{"dedup window float", "PATCH", "/v1/settings", `{"dedup_window_seconds": 1.5}`, 400, "invalid_parameter", "dedup_window_seconds"},
			{"dedup window range", "PATCH", "/v1/settings", `{"dedup_window_seconds": 99999}`, 400, "invalid_parameter", "dedup_window_seconds"},
			{"day start", "PATCH", "/v1/settings", `{"day_start": "25:00"}`, 400, "invalid_parameter", "day_start"},
			{"huge per_page", "GET", "/v1/devices?per_page=10000", "", 400, "invalid_parameter", "per_page"},
			{"zero per_page", "GET", "/v1/devices?per_page=0", "", 400, "invalid_parameter", "per_page"},
			{"page not a number", "GET", "/v1/devices?page=two", "", 400, "invalid_parameter", "page"},
			{"bad sort", "GET", "/v1/devices?sort=password", "", 400, "invalid_sort", "sort"},
			{"bad cursor", "GET", "/v1/devices?cursor=garbage", "", 400, "invalid_cursor", "cursor"},
			{"page and cursor", "GET", "/v1/devices?page=2&cursor=x", "", 400, "invalid_parameter", "page"},
			{"unknown query parameter", "GET", "/v1/devices?colour=red", "", 400, "unknown_parameter", "colour"},
			{"filter twice", "GET", "/v1/devices?site=a&site=b", "", 400, "invalid_parameter", "site"},
			{"bad status filter", "GET", "/v1/devices?status=asleep", "", 400, "invalid_parameter", "status"},
			{"bad boolean filter", "GET", "/v1/employees?active=yes", "", 400, "invalid_parameter", "active"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				devices := e.countDevices(e.acct.ID)
				r := e.api.Do(tc.method, tc.path, nil, apitest.Raw(tc.body))
				er := r.ExpectError(t, tc.status, tc.code)
				gotParam := ""
				if er.Param != nil {
					gotParam = *er.Param
				}
				if gotParam != tc.param {
					t.Errorf("param = %q, want %q", gotParam, tc.param)
				}
				if er.DocURL != e.url+"/docs/errors#"+tc.code {
					t.Errorf("doc_url = %q", er.DocURL)
				}
				if er.Message == "" || er.RequestID != r.Header.Get("X-Request-Id") {
					t.Errorf("message %q, request_id %q vs header %q", er.Message, er.RequestID, r.Header.Get("X-Request-Id"))
				}
				if n := e.countDevices(e.acct.ID); n != devices {
					t.Errorf("a refused request wrote: %d devices, was %d", n, devices)
				}
			})
		}
		t.Run("typo suggestion", func(t *testing.T) {
			er := e.api.Do("POST", "/v1/devices", nil, apitest.Raw(`{"serial_numbr": "A"}`)).ExpectError(t, 400, "unknown_parameter")
			if !strings.Contains(er.Message, `"serial_number"`) {
				t.Fatalf("no suggestion: %s", er.Message)
			}
		})
		t.Run("badge as number explains", func(t *testing.T) {
			er := e.api.Do("POST", "/v1/employees", nil, apitest.Raw(`{"badge_number": 16}`)).ExpectError(t, 400, "invalid_parameter")
			if !strings.Contains(er.Message, "leading zeros") {
				t.Fatalf("message does not explain: %s", er.Message)
			}
		})
	})
}

func TestUnmatchedRoutes(t *testing.T) {
	e := newEnv(t, storetest.SQLiteBackend())
	r := e.api.Do("GET", "/v1/devicez", nil, apitest.Invalid())
	r.ExpectError(t, http.StatusNotFound, "route_not_found")
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id on a 404")
	}
	if r.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatal("an authenticated /v1 call to an unknown path must count and say so")
	}
	e.api.Do("GET", "/v1/devicez", nil, apitest.Invalid(), apitest.NoAuth()).ExpectError(t, http.StatusUnauthorized, "missing_api_key")
	r = e.api.Do("PUT", "/v1/devices", nil, apitest.Invalid())
	r.ExpectError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Fatalf("Allow = %q", allow)
	}
}
