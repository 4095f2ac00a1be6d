package store

import (
	"context"
	"fmt"
	"strings"
)

// Kind is the type of a sortable or filterable column.
type Kind int

// Column kinds.
const (
	KindText Kind = iota
	KindInt
	KindBool
)

// Column describes a field lists may sort or filter by. The API name and the
// column name are the same.
type Column struct {
	Name string
	Kind Kind
}

// ListParams select one page of a list. Filter and sort columns must come
// from the resource's whitelist (DeviceSorts, EmployeeFilters, …); values are
// always bound, never spliced.
type ListParams struct {
	Filters []Filter
	Sort    Column
	Desc    bool
	Limit   int
	Offset  int     // page mode: rows to skip
	After   *Keyset // cursor mode: continue after this row
}

// Filter is an equality condition on a column.
type Filter struct {
	Column Column
	Value  any
}

// Keyset is a position in a sorted list: the sort column's value and the ID
// of the last row returned. Rows are ordered by (sort column, id), which is
// total because IDs are unique.
type Keyset struct {
	Value any
	ID    string
}

// Page is one page of a list with the exact total of matching rows and, when
// more rows follow, the position after the last one returned.
type Page[T any] struct {
	Items []T
	Total int
	Next  *Keyset
}

// listQuery runs a page query over table for one account. scan reads the
// selected columns (cols) of a row (the sort column is selected first, before
// cols, and kept for the next keyset); idOf returns a row's ID.
func listQuery[T any](ctx context.Context, c conn, table, cols, accountID string, p ListParams, scan func(scanner) (T, error), idOf func(T) string) (Page[T], error) {
	where := []string{"account_id = ?", "deleted_at IS NULL"}
	args := []any{accountID}
	for _, f := range p.Filters {
		where = append(where, f.Column.Name+" = ?")
		args = append(args, f.Value)
	}
	var page Page[T]
	countSQL := "SELECT count(*) FROM " + table + " WHERE " + strings.Join(where, " AND ")
	if err := c.queryRow(ctx, countSQL, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count %s: %w", table, err)
	}

	dir, cmp := "ASC", ">"
	if p.Desc {
		dir, cmp = "DESC", "<"
	}
	sortCol := p.Sort.Name
	if p.After != nil {
		where = append(where, fmt.Sprintf("(%s %s ? OR (%s = ? AND id %s ?))", sortCol, cmp, sortCol, cmp))
		args = append(args, p.After.Value, p.After.Value, p.After.ID)
	}
	q := "SELECT " + sortCol + ", " + cols + " FROM " + table +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY " + sortCol + " " + dir + ", id " + dir +
		" LIMIT ? OFFSET ?"
	args = append(args, p.Limit+1, p.Offset)
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", table, err)
	}
	defer rows.Close()
	var lastKey any
	var lastID string
	for rows.Next() {
		if len(page.Items) == p.Limit {
			page.Next = &Keyset{Value: lastKey, ID: lastID}
			break
		}
		var key any
		item, err := scan(prefixScanner{rows: rows, first: &key})
		if err != nil {
			return page, fmt.Errorf("scan %s: %w", table, err)
		}
		page.Items = append(page.Items, item)
		lastKey, lastID = normalizeKey(key, p.Sort.Kind), idOf(item)
	}
	return page, rows.Err()
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// prefixScanner scans one extra leading column (the sort key) into first.
type prefixScanner struct {
	rows  scanner
	first *any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.rows.Scan(append([]any{p.first}, dest...)...)
}

// normalizeKey gives a scanned sort key one Go type per kind, whatever the driver returned.
func normalizeKey(v any, k Kind) any {
	switch k {
	case KindInt:
		switch x := v.(type) {
		case int64:
			return x
		case int32:
			return int64(x)
		case int:
			return int64(x)
		}
	case KindBool:
		switch x := v.(type) {
		case bool:
			return x
		case int64:
			return x != 0
		}
	case KindText:
		switch x := v.(type) {
		case string:
			return x
		case []byte:
			return string(x)
		}
	}
	return v
}
