package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Page-size and page-number limits of every list.
const (
	defaultPerPage  = 50
	maxPerPage      = 500
	maxPage         = 1_000_000
	maxCursorLength = 1024
	maxFilterLength = 255
)

// listSpec is what one list endpoint accepts.
type listSpec struct {
	sorts   []store.Column // the first is the default sort
	filters []store.Column
	// enums restricts some text filters to a set of values.
	enums map[string][]string
	// params are further query parameters the handler reads itself (ranges,
	// filters that are not a column); they are bound into cursors too.
	params []string
}

// listRequest is a parsed list query.
type listRequest struct {
	params  store.ListParams
	page    int // 0 in cursor mode
	perPage int
	sort    string // "name" or "-name"
	filters string // fingerprint of the filters, bound into cursors
}

// pagination is the "pagination" object of every list response.
type pagination struct {
	Page       *int    `json:"page"`
	PerPage    int     `json:"per_page"`
	Total      int     `json:"total"`
	TotalPages int     `json:"total_pages"`
	NextCursor *string `json:"next_cursor"`
}

// cursor is the decoded form of an opaque cursor: the sort it was made for,
// the last row's sort key and ID, and the filters it belongs to.
type cursor struct {
	Sort    string `json:"s"`
	Key     string `json:"k"`
	ID      string `json:"i"`
	Filters string `json:"f"`
}

func invalidParam(param, format string, args ...any) error {
	return attendance.Errorf(attendance.CodeInvalidParameter, param, format, args...)
}

// parseList reads page, per_page, cursor, sort and the filters of spec from q.
func parseList(q url.Values, spec listSpec) (listRequest, error) {
	lr := listRequest{page: 1, perPage: defaultPerPage}
	names := slices.Sorted(maps.Keys(q))
	for _, name := range names {
		vals := q[name]
		known := name == "page" || name == "per_page" || name == "cursor" || name == "sort" || slices.Contains(spec.params, name) ||
			slices.ContainsFunc(spec.filters, func(c store.Column) bool { return c.Name == name })
		if !known {
			return lr, attendance.Errorf(attendance.CodeUnknownParameter, name, "Unknown query parameter %q. This list accepts page, per_page, cursor, sort and the filters %s.", name, filterNames(spec))
		}
		if len(vals) > 1 {
			return lr, invalidParam(name, "%s is given %d times; give it once.", name, len(vals))
		}
	}
	var err error
	if v := q.Get("per_page"); q.Has("per_page") {
		if lr.perPage, err = strconv.Atoi(v); err != nil || lr.perPage < 1 || lr.perPage > maxPerPage {
			return lr, invalidParam("per_page", "per_page must be a whole number from 1 to %d; got %q.", maxPerPage, v)
		}
	}
	if v := q.Get("page"); q.Has("page") {
		if lr.page, err = strconv.Atoi(v); err != nil || lr.page < 1 || lr.page > maxPage {
			return lr, invalidParam("page", "page must be a whole number from 1 to %d; got %q.", maxPage, v)
		}
	}

	var filterPairs []string
	for _, col := range spec.filters {
		if !q.Has(col.Name) {
			continue
		}
		raw := q.Get(col.Name)
		val, err := parseFilter(col, raw, spec.enums[col.Name])
		if err != nil {
			return lr, err
		}
		lr.params.Filters = append(lr.params.Filters, store.Filter{Column: col, Value: val})
		filterPairs = append(filterPairs, col.Name+"="+raw)
	}
	for _, name := range spec.params {
		if q.Has(name) {
			if v := q.Get(name); len(v) > maxFilterLength {
				return lr, invalidParam(name, "%s must be at most %d characters.", name, maxFilterLength)
			}
			filterPairs = append(filterPairs, name+"="+q.Get(name))
		}
	}
	slices.Sort(filterPairs)
	sum := sha256.Sum256([]byte(strings.Join(filterPairs, "&")))
	lr.filters = hex.EncodeToString(sum[:8])

	var cur *cursor
	if q.Has("cursor") {
		if q.Has("page") {
			return lr, invalidParam("page", "Give either page or cursor, not both.")
		}
		c, err := decodeCursor(q.Get("cursor"))
		if err != nil {
			return lr, err
		}
		if c.Filters != lr.filters {
			return lr, attendance.Errorf(attendance.CodeInvalidCursor, "cursor", "This cursor belongs to a list with other filters. Repeat the filters of the request that returned it.")
		}
		cur = &c
		lr.page = 0
	}

	lr.sort = spec.sorts[0].Name
	if q.Has("sort") {
		lr.sort = q.Get("sort")
	} else if cur != nil {
		lr.sort = cur.Sort
	}
	name, desc := strings.CutPrefix(lr.sort, "-")
	i := slices.IndexFunc(spec.sorts, func(c store.Column) bool { return c.Name == name })
	if i < 0 {
		return lr, attendance.Errorf(attendance.CodeInvalidSort, "sort", "Cannot sort by %q. Sort by one of %s, with a leading '-' for descending order.", lr.sort, sortNames(spec))
	}
	lr.params.Sort, lr.params.Desc = spec.sorts[i], desc
	lr.params.Limit = lr.perPage

	if cur != nil {
		if cur.Sort != lr.sort {
			return lr, attendance.Errorf(attendance.CodeInvalidCursor, "cursor", "This cursor was made for sort=%s; repeat that sort or leave sort out.", cur.Sort)
		}
		key, err := parseKey(lr.params.Sort.Kind, cur.Key)
		if err != nil {
			return lr, err
		}
		lr.params.After = &store.Keyset{Value: key, Tie: cur.ID}
	} else {
		lr.params.Offset = (lr.page - 1) * lr.perPage
	}
	return lr, nil
}

func parseFilter(col store.Column, raw string, enum []string) (any, error) {
	switch {
	case col.Kind == store.KindBool:
		switch raw {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, invalidParam(col.Name, "%s must be true or false; got %q.", col.Name, raw)
	case len(enum) > 0 && !slices.Contains(enum, raw):
		return nil, invalidParam(col.Name, "%s must be one of %s; got %q.", col.Name, strings.Join(enum, ", "), raw)
	case len(raw) > maxFilterLength:
		return nil, invalidParam(col.Name, "%s must be at most %d characters.", col.Name, maxFilterLength)
	}
	return raw, nil
}

func filterNames(spec listSpec) string {
	var names []string
	for _, c := range spec.filters {
		names = append(names, c.Name)
	}
	names = append(names, spec.params...)
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

func sortNames(spec listSpec) string {
	names := make([]string, len(spec.sorts))
	for i, c := range spec.sorts {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func badCursor() error {
	return attendance.Errorf(attendance.CodeInvalidCursor, "cursor", "The cursor is not one this API returned. Pass next_cursor from a previous page unchanged.")
}

// decodeCursor parses an opaque cursor. Anything malformed is invalid_cursor.
func decodeCursor(s string) (cursor, error) {
	var c cursor
	if s == "" || len(s) > maxCursorLength {
		return c, badCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, badCursor()
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() || c.ID == "" || c.Sort == "" {
		return c, badCursor()
	}
	return c, nil
}

// parseKey turns a cursor's sort key back into the column's Go type.
func parseKey(kind store.Kind, s string) (any, error) {
	switch kind {
	case store.KindInt:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, badCursor()
		}
		return v, nil
	case store.KindBool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, badCursor()
		}
		return v, nil
	}
	return s, nil
}

func formatKey(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// paginate builds the pagination object of a page.
func (lr listRequest) paginate(total int, next *store.Keyset) pagination {
	p := pagination{PerPage: lr.perPage, Total: total, TotalPages: (total + lr.perPage - 1) / lr.perPage}
	if lr.page > 0 {
		page := lr.page
		p.Page = &page
	}
	if next != nil {
		c := encodeCursor(cursor{Sort: lr.sort, Key: formatKey(next.Value), ID: next.Tie, Filters: lr.filters})
		p.NextCursor = &c
	}
	return p
}

// listResponse is the body of every list.
type listResponse[T any] struct {
	Data       []T        `json:"data"`
	Pagination pagination `json:"pagination"`
}

// listOf renders a page with view.
func listOf[T, V any](lr listRequest, page store.Page[T], view func(T) V) listResponse[V] {
	out := listResponse[V]{Data: make([]V, 0, len(page.Items)), Pagination: lr.paginate(page.Total, page.Next)}
	for _, item := range page.Items {
		out.Data = append(out.Data, view(item))
	}
	return out
}
