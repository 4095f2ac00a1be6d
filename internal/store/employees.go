package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

// EmployeeSorts are the fields employee lists sort by; the first is the default.
var EmployeeSorts = []Column{{Name: "created_at", Kind: KindInt}, {Name: "updated_at", Kind: KindInt}, {Name: "name", Kind: KindText}, {Name: "badge_number", Kind: KindText}}

// EmployeeFilters are the fields employee lists filter on, by equality.
var EmployeeFilters = []Column{
	{Name: "badge_number", Kind: KindText}, {Name: "external_id", Kind: KindText}, {Name: "active", Kind: KindBool},
	{Name: "department", Kind: KindText}, {Name: "email", Kind: KindText},
}

const employeeCols = "id, account_id, badge_number, name, external_id, email, department, card_number, active, metadata, created_at, updated_at"

func scanEmployee(r scanner) (attendance.Employee, error) { return scanEmployeeAnd(r) }

// scanEmployeeAnd reads an employee row with more columns after it, into
// extra.
func scanEmployeeAnd(r scanner, extra ...any) (attendance.Employee, error) {
	var e attendance.Employee
	var ext, email, dept, card sql.NullString
	var meta string
	var created, updated int64
	dest := append([]any{&e.ID, &e.AccountID, &e.BadgeNumber, &e.Name, &ext, &email, &dept, &card, &e.Active, &meta, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return e, err
	}
	e.ExternalID, e.Email, e.Department, e.CardNumber = stringPtr(ext), stringPtr(email), stringPtr(dept), stringPtr(card)
	if err := json.Unmarshal([]byte(meta), &e.Metadata); err != nil {
		return e, fmt.Errorf("employee %s metadata: %w", e.ID, err)
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return e, nil
}

func metadataArg(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func badgeTaken(badge string) error {
	return attendance.Errorf(attendance.CodeBadgeNumberTaken, "badge_number",
		"Badge number %q already belongs to another employee in this account. Update that employee, or use POST /v1/employees/batch to upsert by badge number.", badge)
}

func externalIDTaken(ext string) error {
	return attendance.Errorf(attendance.CodeExternalIDTaken, "external_id",
		"external_id %q already belongs to another employee in this account.", ext)
}

// employeeConflict turns a unique violation into the matching domain error.
func employeeConflict(err error, e attendance.Employee) error {
	desc, ok := uniqueViolation(err)
	switch {
	case !ok:
		return err
	case strings.Contains(desc, "external_id"):
		return externalIDTaken(deref(e.ExternalID))
	default:
		return badgeTaken(e.BadgeNumber)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// insertEmployee writes a new employee row.
func (tx *Tx) insertEmployee(ctx context.Context, e attendance.Employee) error {
	meta, err := metadataArg(e.Metadata)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `INSERT INTO employees (`+employeeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, e.BadgeNumber, e.Name, nullString(e.ExternalID), nullString(e.Email), nullString(e.Department),
		nullString(e.CardNumber), e.Active, meta, micros(e.CreatedAt), micros(e.UpdatedAt))
	return err
}

// updateEmployee writes every mutable column of an existing employee.
func (tx *Tx) updateEmployee(ctx context.Context, e attendance.Employee) error {
	meta, err := metadataArg(e.Metadata)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `UPDATE employees SET badge_number = ?, name = ?, external_id = ?, email = ?, department = ?, card_number = ?,
		active = ?, metadata = ?, updated_at = ? WHERE id = ?`,
		e.BadgeNumber, e.Name, nullString(e.ExternalID), nullString(e.Email), nullString(e.Department), nullString(e.CardNumber),
		e.Active, meta, micros(e.UpdatedAt), e.ID)
	return err
}

// newEmployee is a new employee with in applied to the defaults.
func (tx *Tx) newEmployee(accountID string, in *attendance.EmployeeInput) attendance.Employee {
	e := attendance.Employee{
		ID: id.New(id.Employee), AccountID: accountID, Active: true, Metadata: map[string]string{},
		CreatedAt: tx.Now, UpdatedAt: tx.Now,
	}
	in.Apply(&e)
	return e
}

// CreateEmployee adds an employee. in must be validated.
func (tx *Tx) CreateEmployee(ctx context.Context, accountID string, in attendance.EmployeeInput) (attendance.Employee, error) {
	e := tx.newEmployee(accountID, &in)
	if err := tx.insertEmployee(ctx, e); err != nil {
		return e, employeeConflict(err, e)
	}
	return e, nil
}

// UpdateEmployee changes the set fields of an employee. in must be validated.
func (tx *Tx) UpdateEmployee(ctx context.Context, accountID, employeeID string, in attendance.EmployeeInput) (attendance.Employee, error) {
	e, err := scanEmployee(tx.queryRow(ctx, `SELECT `+employeeCols+` FROM employees WHERE account_id = ? AND id = ? AND deleted_at IS NULL`+tx.forUpdate(), accountID, employeeID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, attendance.NotFound("employee", employeeID)
	}
	if err != nil {
		return e, fmt.Errorf("read employee: %w", err)
	}
	in.Apply(&e)
	e.UpdatedAt = tx.Now
	if err := tx.updateEmployee(ctx, e); err != nil {
		return e, employeeConflict(err, e)
	}
	return e, nil
}

// DeleteEmployee removes an employee. Punch history keeps its snapshot; the
// badge number becomes free for a new employee.
func (tx *Tx) DeleteEmployee(ctx context.Context, accountID, employeeID string) error {
	res, err := tx.exec(ctx, `UPDATE employees SET deleted_at = ?, updated_at = ? WHERE account_id = ? AND id = ? AND deleted_at IS NULL`,
		micros(tx.Now), micros(tx.Now), accountID, employeeID)
	if err != nil {
		return fmt.Errorf("delete employee: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return attendance.NotFound("employee", employeeID)
	}
	return nil
}

// Employee reads one live employee of the account in the transaction.
func (tx *Tx) Employee(ctx context.Context, accountID, employeeID string) (attendance.Employee, error) {
	e, err := scanEmployee(tx.queryRow(ctx, `SELECT `+employeeCols+` FROM employees WHERE account_id = ? AND id = ? AND deleted_at IS NULL`+tx.forUpdate(), accountID, employeeID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, attendance.NotFound("employee", employeeID)
	}
	return e, err
}

// Employee reads one employee of the account.
func (s *Store) Employee(ctx context.Context, accountID, employeeID string) (attendance.Employee, error) {
	e, err := scanEmployee(s.reader().queryRow(ctx, `SELECT `+employeeCols+` FROM employees WHERE account_id = ? AND id = ? AND deleted_at IS NULL`, accountID, employeeID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, attendance.NotFound("employee", employeeID)
	}
	return e, err
}

// ListEmployees returns one page of the account's employees.
func (s *Store) ListEmployees(ctx context.Context, accountID string, p ListParams) (Page[attendance.Employee], error) {
	return listQuery(ctx, s.reader(), liveRows("employees", employeeCols, accountID), p, scanEmployee)
}

// UpsertResult is the outcome of one item of an employee batch.
type UpsertResult struct {
	Created  bool
	Employee attendance.Employee
	Previous attendance.Employee // before an update
	Err      error               // an *attendance.Error; the item was not written
}

// upsertChunk bounds the IN lists of the batch look-ups.
const upsertChunk = 500

// UpsertEmployees creates or updates employees by badge number, in order.
// Items must be validated and carry a badge number. An item that conflicts
// (a badge twice in the batch, an external_id held by another employee)
// fails alone; the others are written. Fields an item leaves out keep their
// stored values.
func (tx *Tx) UpsertEmployees(ctx context.Context, accountID string, items []attendance.EmployeeInput) ([]UpsertResult, error) {
	badges := make([]string, 0, len(items))
	var exts []string
	for _, in := range items {
		badges = append(badges, in.BadgeNumber.Value)
		if in.ExternalID.Set && in.ExternalID.Value != nil {
			exts = append(exts, *in.ExternalID.Value)
		}
	}
	byBadge := map[string]attendance.Employee{}
	if err := tx.employeesWhereIn(ctx, accountID, "badge_number", badges, true, func(e attendance.Employee) { byBadge[e.BadgeNumber] = e }); err != nil {
		return nil, err
	}
	extOwner := map[string]string{} // external_id → employee id, kept current as items apply
	for _, e := range byBadge {
		if e.ExternalID != nil {
			extOwner[*e.ExternalID] = e.ID
		}
	}
	if err := tx.employeesWhereIn(ctx, accountID, "external_id", exts, true, func(e attendance.Employee) { extOwner[*e.ExternalID] = e.ID }); err != nil {
		return nil, err
	}

	results := make([]UpsertResult, len(items))
	seen := make(map[string]int, len(items))
	for i := range items {
		in := &items[i]
		badge := in.BadgeNumber.Value
		if first, dup := seen[badge]; dup {
			results[i].Err = attendance.Errorf(attendance.CodeDuplicateInBatch, "badge_number",
				"badge_number %q also appears at index %d of this batch; each employee may appear once.", badge, first)
			continue
		}
		seen[badge] = i
		e, exists := byBadge[badge]
		if !exists {
			e = tx.newEmployee(accountID, in)
		} else {
			in.Apply(&e)
			e.UpdatedAt = tx.Now
		}
		if in.ExternalID.Set && in.ExternalID.Value != nil {
			if owner, ok := extOwner[*in.ExternalID.Value]; ok && owner != e.ID {
				results[i].Err = externalIDTaken(*in.ExternalID.Value)
				continue
			}
		}
		var err error
		if exists {
			err = tx.updateEmployee(ctx, e)
		} else {
			err = tx.insertEmployee(ctx, e)
		}
		if _, ok := uniqueViolation(err); ok {
			// A concurrent writer got there between our reads and this write;
			// the transaction is aborted, so start it again.
			return nil, fmt.Errorf("employee batch: %w: %w", ErrRetry, err)
		}
		if err != nil {
			return nil, fmt.Errorf("write employee: %w", err)
		}
		if old, ok := byBadge[badge]; ok && old.ExternalID != nil {
			delete(extOwner, *old.ExternalID)
		}
		if e.ExternalID != nil {
			extOwner[*e.ExternalID] = e.ID
		}
		previous := byBadge[badge]
		byBadge[badge] = e
		results[i] = UpsertResult{Created: !exists, Employee: e, Previous: previous}
	}
	return results, nil
}

// EmployeesByBadge returns the account's live employees with these badge
// numbers, by badge number.
func (tx *Tx) EmployeesByBadge(ctx context.Context, accountID string, badges []string) (map[string]attendance.Employee, error) {
	out := make(map[string]attendance.Employee, len(badges))
	err := tx.employeesWhereIn(ctx, accountID, "badge_number", badges, false, func(e attendance.Employee) { out[e.BadgeNumber] = e })
	return out, err
}

// EmployeesByBadgeLocked is EmployeesByBadge that also serializes
// normalization for the employees it finds across transactions, so that
// two devices' punches of one employee see each other (duplicate window,
// direction). PostgreSQL takes transaction-scoped advisory locks, in key
// order so that transactions cannot deadlock on them, in the same
// statement: one round trip for both. The employee rows are read before
// the locks are granted, which is fine: the locks guard the employees'
// punches, read by the statements after. SQLite's single writer needs no
// lock.
func (tx *Tx) EmployeesByBadgeLocked(ctx context.Context, accountID string, badges []string) (map[string]attendance.Employee, error) {
	if tx.dialect != Postgres {
		return tx.EmployeesByBadge(ctx, accountID, badges)
	}
	in, list := tx.in("badge_number", badges)
	found, err := queryAll(ctx, tx.conn, scanEmployee, lockedEmployeesSQL(in)+` SELECT e.* FROM e, l`, accountID, list)
	if err != nil {
		return nil, fmt.Errorf("read and lock employees: %w", err)
	}
	out := make(map[string]attendance.Employee, len(found))
	for _, e := range found {
		out[e.BadgeNumber] = e
	}
	return out, nil
}

// lockedEmployeesSQL is the WITH clause of EmployeesByBadgeLocked: e, the
// live employees of an account (first parameter) whose badge_number matches
// in, and l, their locks.
func lockedEmployeesSQL(in string) string {
	return `WITH e AS MATERIALIZED (SELECT ` + employeeCols + ` FROM employees WHERE account_id = ? AND deleted_at IS NULL AND ` + in + `),
		l AS (SELECT count(pg_advisory_xact_lock(k)) AS n FROM
			(SELECT DISTINCT hashtextextended('punchconnect.employee.' || id, 0) AS k FROM e ORDER BY k) AS keys)`
}

// IngestLookup is what ingest first needs of an account for a batch: which
// of keys it already stores (ExistingDedupKeys) and its live employees with
// the badges, locked for normalization (EmployeesByBadgeLocked). On
// PostgreSQL both are one statement, whose dedup keys come back as rows
// with an empty employee: a round trip less for every device request.
func (tx *Tx) IngestLookup(ctx context.Context, accountID string, keys, badges []string) (map[string]bool, map[string]attendance.Employee, error) {
	if tx.dialect != Postgres {
		stored, err := tx.ExistingDedupKeys(ctx, accountID, keys)
		if err != nil {
			return nil, nil, err
		}
		employees, err := tx.EmployeesByBadge(ctx, accountID, badges)
		return stored, employees, err
	}
	inBadge, badgeList := tx.in("badge_number", badges)
	inKey, keyList := tx.in("dedup_key", keys)
	rows, err := tx.query(ctx, lockedEmployeesSQL(inBadge)+`
		SELECT e.*, NULL::text FROM e, l
		UNION ALL
		SELECT '', '', '', '', NULL, NULL, NULL, NULL, false, '{}', 0, 0, dedup_key FROM punches WHERE account_id = ? AND `+inKey,
		accountID, badgeList, accountID, keyList)
	if err != nil {
		return nil, nil, fmt.Errorf("read dedup keys, read and lock employees: %w", err)
	}
	defer rows.Close()
	stored := map[string]bool{}
	employees := map[string]attendance.Employee{}
	for rows.Next() {
		var key sql.NullString
		e, err := scanEmployeeAnd(rows, &key)
		if err != nil {
			return nil, nil, err
		}
		if key.Valid {
			stored[key.String] = true
		} else {
			employees[e.BadgeNumber] = e
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	tx.addHeldKeys(accountID, keys, stored)
	return stored, employees, nil
}

// employeesWhereIn calls fn for each live employee of the account whose
// column is one of values, locking the rows when lock is set.
func (tx *Tx) employeesWhereIn(ctx context.Context, accountID, column string, values []string, lock bool, fn func(attendance.Employee)) error {
	suffix := ""
	if lock {
		suffix = tx.forUpdate()
	}
	in, list := tx.in(column, values)
	rows, err := tx.query(ctx, `SELECT `+employeeCols+` FROM employees WHERE account_id = ? AND deleted_at IS NULL AND `+in+suffix, accountID, list)
	if err != nil {
		return fmt.Errorf("read employees: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEmployee(rows)
		if err != nil {
			return err
		}
		fn(e)
	}
	return rows.Err()
}
