package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/punchconnect/punchconnect/internal/apitest"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

type employeePage struct {
	Data       []map[string]any `json:"data"`
	Pagination struct {
		Page       *int    `json:"page"`
		PerPage    int     `json:"per_page"`
		Total      int     `json:"total"`
		TotalPages int     `json:"total_pages"`
		NextCursor *string `json:"next_cursor"`
	} `json:"pagination"`
}

func TestListPagination(t *testing.T) {
	eachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		var want []string
		for i := range 7 {
			e.clock.Advance(1e9)
			d := e.api.Do("POST", "/v1/employees", map[string]any{
				"badge_number": fmt.Sprintf("%d", 100+i), "name": fmt.Sprintf("E%d", 7-i), "department": []string{"A", "B"}[i%2],
			}).Expect(t, http.StatusCreated).Data(t)
			want = append(want, d["id"].(string))
		}

		var p employeePage
		e.api.Do("GET", "/v1/employees?per_page=3&page=3", nil).Expect(t, 200).JSON(t, &p)
		if len(p.Data) != 1 || p.Data[0]["id"] != want[6] || *p.Pagination.Page != 3 || p.Pagination.Total != 7 ||
			p.Pagination.TotalPages != 3 || p.Pagination.NextCursor != nil {
			t.Fatalf("page 3 = %+v", p)
		}
		e.api.Do("GET", "/v1/employees?per_page=3&page=9", nil).Expect(t, 200).JSON(t, &p)
		if len(p.Data) != 0 || p.Pagination.Total != 7 {
			t.Fatalf("page past the end = %+v", p)
		}

		walk := func(query string) []string {
			var ids []string
			q := query
			for range 10 {
				var p employeePage
				e.api.Do("GET", "/v1/employees?"+q, nil).Expect(t, 200).JSON(t, &p)
				for _, d := range p.Data {
					ids = append(ids, d["id"].(string))
				}
				if p.Pagination.NextCursor == nil {
					return ids
				}
				if p.Pagination.Page != nil && !strings.Contains(q, "cursor=") && *p.Pagination.Page != 1 {
					t.Fatalf("first page number = %d", *p.Pagination.Page)
				}
				// Only the cursor and the same filters: sort comes from the cursor.
				q = "per_page=3&cursor=" + url.QueryEscape(*p.Pagination.NextCursor)
				if strings.Contains(query, "department=") {
					q += "&department=A"
				}
			}
			t.Fatal("cursor walk does not end")
			return nil
		}
		if got := walk("per_page=3"); !slices.Equal(got, want) {
			t.Fatalf("cursor walk = %v, want %v", got, want)
		}
		desc := slices.Clone(want)
		slices.Reverse(desc)
		if got := walk("per_page=3&sort=-created_at"); !slices.Equal(got, desc) {
			t.Fatalf("descending walk = %v, want %v", got, desc)
		}
		// Names E7..E1 were given in creation order, so by name is the reverse.
		if got := walk("per_page=3&sort=name"); !slices.Equal(got, desc) {
			t.Fatalf("walk by name = %v, want %v", got, desc)
		}
		if got := walk("per_page=3&department=A"); !slices.Equal(got, []string{want[0], want[2], want[4], want[6]}) {
			t.Fatalf("filtered walk = %v", got)
		}

		// A cursor only continues the list it came from.
		e.api.Do("GET", "/v1/employees?per_page=3&department=A", nil).Expect(t, 200).JSON(t, &p)
		cur := url.QueryEscape(*p.Pagination.NextCursor)
		e.api.Do("GET", "/v1/employees?cursor="+cur, nil).ExpectError(t, 400, "invalid_cursor")
		e.api.Do("GET", "/v1/employees?department=A&sort=name&cursor="+cur, nil).ExpectError(t, 400, "invalid_cursor")
		e.api.Do("GET", "/v1/devices?cursor="+cur, nil, apitest.Invalid()).ExpectError(t, 400, "invalid_cursor")
		e.api.Do("GET", "/v1/employees?department=A&cursor="+cur, nil).Expect(t, 200)
	})
}

// FuzzDecodeCursor: no cursor string crashes the decoder; every cursor the
// API makes decodes to what it encoded.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{Sort: "-created_at", Key: "1711609283000000", ID: "dev_01jq3v8c1kfx9b7n2m4p6r8t0w", Filters: "abc"}))
	f.Add("")
	f.Add("e30")
	f.Add("eyJzIjoibmFtZSIsImsiOiIiLCJpIjoieCIsImYiOiIifQ")
	f.Add("%%%")
	f.Add(strings.Repeat("A", 2000))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		if c.ID == "" || c.Sort == "" {
			t.Fatalf("accepted an empty cursor: %+v", c)
		}
		back, err := decodeCursor(encodeCursor(c))
		if err != nil || back != c {
			t.Fatalf("round trip %+v → %+v, %v", c, back, err)
		}
		// The list parser must turn any accepted cursor into a query or an error, never a panic.
		_, _ = parseList(url.Values{"cursor": {s}, "sort": {c.Sort}}, employeeList)
	})
}

// FuzzParseList: any query string yields a list request within the limits or
// a documented error.
func FuzzParseList(f *testing.F) {
	for _, q := range []string{"", "page=2&per_page=500", "sort=-name&active=true", "cursor=x&page=1", "per_page=-1", "sort=--name", "active=TRUE&active=false"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lr, err := parseList(q, employeeList)
		if err != nil {
			if _, ok := errorClasses[errorCodeOf(err)]; !ok {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if lr.perPage < 1 || lr.perPage > maxPerPage || lr.params.Limit != lr.perPage || lr.params.Offset < 0 {
			t.Fatalf("out of bounds: %+v", lr)
		}
	})
}
