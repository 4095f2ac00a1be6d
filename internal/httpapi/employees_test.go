package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

func TestEmployees(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		emp := e.api.Do("POST", "/v1/employees", map[string]any{
			"badge_number": "016", "name": "Sarah Chen", "external_id": "HR-42", "email": "sarah@example.com",
			"metadata": map[string]string{"cost_center": "7"},
		}).Expect(t, http.StatusCreated).Data(t)
		if emp["badge_number"] != "016" || emp["active"] != true || emp["department"] != nil ||
			emp["metadata"].(map[string]any)["cost_center"] != "7" || emp["object"] != "employee" {
			t.Fatalf("created %v", emp)
		}
		id := emp["id"].(string)

		// "16" is another badge than "016".
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "16"}).Expect(t, http.StatusCreated)
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "016"}).ExpectError(t, http.StatusConflict, "badge_number_taken")
		er := e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": 16}, apitest.Invalid()).
			ExpectError(t, http.StatusBadRequest, "invalid_parameter")
		if *er.Param != "badge_number" {
			t.Fatalf("param = %v", *er.Param)
		}
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "900", "external_id": "HR-42"}).
			ExpectError(t, http.StatusConflict, "external_id_taken")

		up := e.api.Do("PATCH", "/v1/employees/"+id, map[string]any{"active": false, "email": nil, "department": "Ops"}).
			Expect(t, http.StatusOK).Data(t)
		if up["active"] != false || up["email"] != nil || up["department"] != "Ops" || up["name"] != "Sarah Chen" {
			t.Fatalf("patched %v", up)
		}
		var list struct {
			Data []map[string]any `json:"data"`
		}
		e.api.Do("GET", "/v1/employees?active=false", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != id {
			t.Fatalf("active=false lists %v", list.Data)
		}
		e.api.Do("GET", "/v1/employees?badge_number=016", nil).Expect(t, http.StatusOK).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0]["id"] != id {
			t.Fatalf("badge filter lists %v", list.Data)
		}
		e.api.Do("DELETE", "/v1/employees/"+id, nil).Expect(t, http.StatusOK)
		e.api.Do("GET", "/v1/employees/"+id, nil).ExpectError(t, http.StatusNotFound, "resource_not_found")
		// The badge is free again.
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "016"}).Expect(t, http.StatusCreated)
	})
}

type batchResult struct {
	Data []struct {
		Index    int               `json:"index"`
		Status   string            `json:"status"`
		Employee map[string]any    `json:"employee"`
		Error    *apitest.APIError `json:"error"`
	} `json:"data"`
	Summary map[string]int `json:"summary"`
}

func TestEmployeeBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.api.Do("POST", "/v1/employees", map[string]any{"badge_number": "1042", "name": "Sarah", "department": "Ops"}).Expect(t, http.StatusCreated)

		var res batchResult
		e.api.Do("POST", "/v1/employees/batch", map[string]any{"employees": []any{
			map[string]any{"badge_number": "1042", "name": "Sarah Chen"},
			map[string]any{"badge_number": "1043", "name": "James Okoro"},
			map[string]any{"badge_number": "10 44"},
			map[string]any{"badge_number": 1045},
			map[string]any{"name": "No Badge"},
			map[string]any{"badge_number": "1043", "name": "Twice"},
			map[string]any{"badge_number": "1046", "nmae": "Typo"},
			"not an object",
		}}, apitest.Invalid()).Expect(t, http.StatusOK).JSON(t, &res)

		wants := []struct{ status, code, param string }{
			{"updated", "", ""},
			{"created", "", ""},
			{"error", "invalid_parameter", "employees[2].badge_number"},
			{"error", "invalid_parameter", "employees[3].badge_number"},
			{"error", "missing_parameter", "employees[4].badge_number"},
			{"error", "duplicate_in_batch", "employees[5].badge_number"},
			{"error", "unknown_parameter", "employees[6].nmae"},
			{"error", "invalid_json", "employees[7]"},
		}
		if len(res.Data) != len(wants) {
			t.Fatalf("%d results for %d items", len(res.Data), len(wants))
		}
		for i, w := range wants {
			got := res.Data[i]
			if got.Index != i || got.Status != w.status {
				t.Errorf("item %d: %+v, want status %s", i, got, w.status)
				continue
			}
			if w.code != "" && (got.Error == nil || got.Error.Code != w.code || got.Error.Param == nil || *got.Error.Param != w.param) {
				t.Errorf("item %d error = %+v, want %s at %s", i, got.Error, w.code, w.param)
			}
			if w.code == "" && got.Employee == nil {
				t.Errorf("item %d has no employee", i)
			}
		}
		if res.Data[0].Employee["name"] != "Sarah Chen" || res.Data[0].Employee["department"] != "Ops" {
			t.Errorf("update lost fields: %v", res.Data[0].Employee)
		}
		if res.Summary["created"] != 1 || res.Summary["updated"] != 1 || res.Summary["errors"] != 6 {
			t.Errorf("summary = %v", res.Summary)
		}

		t.Run("5000 at once", func(t *testing.T) {
			items := make([]map[string]any, 5000)
			for i := range items {
				items[i] = map[string]any{"badge_number": fmt.Sprintf("B%04d", i), "name": fmt.Sprintf("Employee %d", i)}
			}
			var res batchResult
			e.api.Do("POST", "/v1/employees/batch", map[string]any{"employees": items}).Expect(t, http.StatusOK).JSON(t, &res)
			if res.Summary["created"] != 5000 {
				t.Fatalf("summary = %v", res.Summary)
			}
			var list struct {
				Pagination map[string]any `json:"pagination"`
			}
			e.api.Do("GET", "/v1/employees?per_page=1", nil).Expect(t, http.StatusOK).JSON(t, &list)
			if list.Pagination["total"] != 5002.0 {
				t.Fatalf("total = %v", list.Pagination["total"])
			}
		})
		t.Run("5001 is too many", func(t *testing.T) {
			items := make([]map[string]any, 5001)
			for i := range items {
				items[i] = map[string]any{"badge_number": fmt.Sprintf("X%04d", i)}
			}
			e.api.Do("POST", "/v1/employees/batch", map[string]any{"employees": items}, apitest.Invalid()).
				ExpectError(t, http.StatusBadRequest, "batch_too_large")
		})
		t.Run("employees required", func(t *testing.T) {
			e.api.Do("POST", "/v1/employees/batch", map[string]any{}, apitest.Invalid()).ExpectError(t, http.StatusBadRequest, "missing_parameter")
			e.api.Do("POST", "/v1/employees/batch", map[string]any{"employees": "x"}, apitest.Invalid()).ExpectError(t, http.StatusBadRequest, "invalid_parameter")
		})
	})
}
