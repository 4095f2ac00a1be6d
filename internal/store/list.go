package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// Kind is the type of a sortable or filterable column.
type Kind int

// Column kinds.
const (
	KindText Kind = iota
	KindInt
	KindBool
)

// Column describes a field lists may sort or filter by: its API name, its
// type, and the SQL expression behind it (the name itself when empty).
type Column struct {
	Name string
	Kind Kind
	Expr string
}

func (c Column) expr() string {
	if c.Expr != "" {
		return c.Expr
	}
	return c.Name
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

// Keyset is a position in a sorted list: the sort column's value and the
// tie-breaker of the last row returned. Rows are ordered by (sort column,
// tie-breaker), which is total because tie-breakers are unique (the ID, or a
// sequence number). Tie is opaque to callers.
type Keyset struct {
	Value any
	Tie   string
}

// Page is one page of a list with the exact total of matching rows and, when
// more rows follow, the position after the last one returned.
type Page[T any] struct {
	Items []T
	Total int
	Next  *Keyset
}

// listSQL is the shape of one list query: the rows (from, with joins), the
// columns scanned, the unique expression that breaks ties (and its kind),
// the table counted for the total, and the conditions every row meets
// (account scoping first).
type listSQL struct {
	from      string
	cols      string
	tieExpr   string
	tieKind   Kind
	countFrom string
	where     []string
	args      []any
}

// liveRows lists the account's rows of table that are not deleted.
func liveRows(table, cols, accountID string) listSQL {
	return listSQL{from: table, cols: cols, tieExpr: "id", tieKind: KindText, countFrom: table,
		where: []string{"account_id = ?", "deleted_at IS NULL"}, args: []any{accountID}}
}

// listQuery runs a page query. scan reads the selected columns (cols) of a
// row; the sort and tie expressions are selected first, before cols, and
// kept for the next keyset.
func listQuery[T any](ctx context.Context, c conn, q listSQL, p ListParams, scan func(scanner) (T, error)) (Page[T], error) {
	where := append([]string(nil), q.where...)
	args := append([]any(nil), q.args...)
	for _, f := range p.Filters {
		where = append(where, f.Column.expr()+" = ?")
		args = append(args, f.Value)
	}
	var page Page[T]
	countSQL := "SELECT count(*) FROM " + q.countFrom + " WHERE " + strings.Join(where, " AND ")
	if err := c.queryRow(ctx, countSQL, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count %s: %w", q.countFrom, err)
	}

	dir, cmp := "ASC", ">"
	if p.Desc {
		dir, cmp = "DESC", "<"
	}
	sortExpr := p.Sort.expr()
	if p.After != nil {
		tie, err := parseTie(p.After.Tie, q.tieKind)
		if err != nil {
			return page, err
		}
		where = append(where, fmt.Sprintf("(%s %s ? OR (%s = ? AND %s %s ?))", sortExpr, cmp, sortExpr, q.tieExpr, cmp))
		args = append(args, p.After.Value, p.After.Value, tie)
	}
	query := "SELECT " + sortExpr + ", " + q.tieExpr + ", " + q.cols + " FROM " + q.from +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY " + sortExpr + " " + dir + ", " + q.tieExpr + " " + dir +
		" LIMIT ? OFFSET ?"
	args = append(args, p.Limit+1, p.Offset)
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", q.countFrom, err)
	}
	defer rows.Close()
	var last Keyset
	for rows.Next() {
		if len(page.Items) == p.Limit {
			page.Next = &last
			break
		}
		var key, tie any
		item, err := scan(prefixScanner{rows: rows, first: []any{&key, &tie}})
		if err != nil {
			return page, fmt.Errorf("scan %s: %w", q.countFrom, err)
		}
		page.Items = append(page.Items, item)
		last = Keyset{Value: normalizeKey(key, p.Sort.Kind), Tie: fmt.Sprint(normalizeKey(tie, q.tieKind))}
	}
	return page, rows.Err()
}

// parseTie reads a keyset's tie-breaker; a cursor made for another list
// does not read.
func parseTie(s string, k Kind) (any, error) {
	if k != KindInt {
		return s, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, attendance.Errorf(attendance.CodeInvalidCursor, "cursor", "The cursor is not one this list returned. Pass next_cursor from a previous page unchanged.")
	}
	return n, nil
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// prefixScanner scans extra leading columns (the sort and tie keys) into first.
type prefixScanner struct {
	rows  scanner
	first []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.rows.Scan(append(append([]any(nil), p.first...), dest...)...)
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

// queryAll runs a query and reads every row with scan.
func queryAll[T any](ctx context.Context, c conn, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanValue reads a row of one column.
func scanValue[T any](r scanner) (T, error) {
	var v T
	err := r.Scan(&v)
	return v, err
}
