package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// punchInsertCols are the stored columns of a punch, in insert order.
const punchInsertCols = `id, account_id, device_id, employee_id, badge_number, status, reason, detail, punch_time, device_time,
	local_time, local_date, work_date, clock_offset_seconds, received_at, direction, direction_source, state, verify,
	method, confidence, work_code, source, external_id, raw, dedup_key, folded, event_id, released_at, created_at`

const punchInsertColCount = 30

// punchSelect reads a punch with the device and employee it names.
const punchSelect = `p.id, p.account_id, p.device_id, p.employee_id, p.badge_number, p.status, p.reason, p.detail, p.punch_time,
	p.device_time, p.local_time, p.local_date, p.work_date, p.clock_offset_seconds, p.received_at, p.direction, p.direction_source,
	p.state, p.verify, p.method, p.confidence, p.work_code, p.source, p.external_id, p.raw, p.dedup_key, p.folded, p.event_id,
	p.released_at, p.created_at, d.serial_number, d.name, d.site, e.badge_number, e.name`

const punchFrom = `punches p JOIN devices d ON d.id = p.device_id LEFT JOIN employees e ON e.id = p.employee_id`

func scanPunch(r scanner) (attendance.Punch, error) {
	var p attendance.Punch
	var emp, reason, direction, dirSource, ext, eventID, empBadge, empName sql.NullString
	var state sql.NullInt64
	var conf sql.NullFloat64
	var status, method string
	var punchTime, received, released, created int64
	err := r.Scan(&p.ID, &p.AccountID, &p.DeviceID, &emp, &p.BadgeNumber, &status, &reason, &p.Detail, &punchTime,
		&p.DeviceTime, &p.LocalTime, &p.LocalDate, &p.WorkDate, &p.ClockOffsetSeconds, &received, &direction, &dirSource,
		&state, &p.Verify, &method, &conf, &p.WorkCode, &p.Source, &ext, &p.Raw, &p.DedupKey, &p.Folded, &eventID,
		&released, &created, &p.Device.SerialNumber, &p.Device.Name, &p.Device.Site, &empBadge, &empName)
	if err != nil {
		return p, err
	}
	p.Device.ID = p.DeviceID
	p.EmployeeID, p.ExternalID, p.EventID = stringPtr(emp), stringPtr(ext), stringPtr(eventID)
	p.Status, p.Reason, p.Method = attendance.PunchStatus(status), attendance.Reason(reason.String), attendance.Method(method)
	p.Direction, p.DirectionSource = attendance.Direction(direction.String), attendance.DirectionSource(dirSource.String)
	p.State = intPtr(state)
	if conf.Valid {
		v := conf.Float64
		p.Confidence = &v
	}
	p.Time, p.ReceivedAt, p.ReleasedAt, p.CreatedAt = fromMicros(punchTime), fromMicros(received), fromMicros(released), fromMicros(created)
	if p.EmployeeID != nil && empBadge.Valid {
		p.Employee = &attendance.EmployeeRef{ID: *p.EmployeeID, BadgeNumber: empBadge.String, Name: empName.String}
	}
	return p, nil
}

func punchArgs(p *attendance.Punch) []any {
	var conf any
	if p.Confidence != nil {
		conf = *p.Confidence
	}
	var reason, direction, dirSource any
	if p.Reason != "" {
		reason = string(p.Reason)
	}
	if p.Direction != "" {
		direction = string(p.Direction)
	}
	if p.DirectionSource != "" {
		dirSource = string(p.DirectionSource)
	}
	return []any{p.ID, p.AccountID, p.DeviceID, nullString(p.EmployeeID), p.BadgeNumber, string(p.Status), reason, p.Detail,
		micros(p.Time), p.DeviceTime, p.LocalTime, p.LocalDate, p.WorkDate, p.ClockOffsetSeconds, micros(p.ReceivedAt),
		direction, dirSource, intArg(p.State), p.Verify, string(p.Method), conf, p.WorkCode, p.Source, nullString(p.ExternalID),
		p.Raw, p.DedupKey, p.Folded, nullString(p.EventID), micros(p.ReleasedAt), micros(p.CreatedAt)}
}

// insertChunk bounds the rows of one multi-row INSERT (SQLite binds at most
// 32,766 parameters).
const insertChunk = 200

// InsertPunches writes punches, skipping any whose dedup key the account
// already has (an exact re-upload another transaction stored first), and
// returns the IDs it wrote.
//
// A request of a PostgreSQL group commit (batch.go) hands its punches to the
// group instead, which writes all of them in one statement before its events
// and COMMIT (flushPunches): every punch is reported written, and the group
// fails with ErrRetry — running each request again alone — if one was
// stored first by another transaction after all. Until then the group's
// later requests find them through ExistingDedupKeys, IngestLookup and
// AcceptedPunches, and the other readers of punches in a transaction write
// them first (the holder's flushPunches). A request that fails fails its
// whole group there, so its punches are never written.
func (tx *Tx) InsertPunches(ctx context.Context, punches []attendance.Punch) (map[string]bool, error) {
	if g := tx.group; g != nil && tx.dialect == Postgres {
		inserted := make(map[string]bool, len(punches))
		for _, p := range punches {
			inserted[p.ID] = true
		}
		g.heldPunches = append(g.heldPunches, punches...)
		return inserted, nil
	}
	return tx.insertPunches(ctx, punches)
}

// holder is the transaction whose held-back punches tx sees (see
// InsertPunches): its group's, or its own.
func (tx *Tx) holder() *Tx {
	if tx.group != nil {
		return tx.group
	}
	return tx
}

// addHeldKeys adds to stored those of keys that the account's held-back
// punches carry.
func (tx *Tx) addHeldKeys(accountID string, keys []string, stored map[string]bool) {
	held := tx.holder().heldPunches
	if len(held) == 0 {
		return
	}
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	for _, p := range held {
		if p.AccountID == accountID && want[p.DedupKey] {
			stored[p.DedupKey] = true
		}
	}
}

// flushPunches writes the punches a group held back; InTx calls it before
// the events and COMMIT.
func (tx *Tx) flushPunches(ctx context.Context) error {
	punches := tx.heldPunches
	tx.heldPunches = nil
	if len(punches) == 0 {
		return nil
	}
	inserted, err := tx.insertPunches(ctx, punches)
	if err != nil {
		return err
	}
	if len(inserted) != len(punches) {
		// Another transaction stored some of these records first: every
		// request runs again, alone, and sees them as re-uploads.
		return fmt.Errorf("group commit: %w: %d of %d records stored concurrently", ErrRetry, len(punches)-len(inserted), len(punches))
	}
	return nil
}

func (tx *Tx) insertPunches(ctx context.Context, punches []attendance.Punch) (map[string]bool, error) {
	inserted := make(map[string]bool, len(punches))
	for start := 0; start < len(punches); start += insertChunk {
		chunk := punches[start:min(start+insertChunk, len(punches))]
		row := "(" + strings.Repeat("?, ", punchInsertColCount-1) + "?)"
		q := `INSERT INTO punches (` + punchInsertCols + `) VALUES ` + valuesRows(row, len(chunk)) +
			` ON CONFLICT (account_id, dedup_key) DO NOTHING RETURNING id`
		args := make([]any, 0, len(chunk)*punchInsertColCount)
		for i := range chunk {
			args = append(args, punchArgs(&chunk[i])...)
		}
		rows, err := tx.query(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("insert punches: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inserted[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// ExistingDedupKeys returns which of keys the account already stores.
func (tx *Tx) ExistingDedupKeys(ctx context.Context, accountID string, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	in, list := tx.in("dedup_key", keys)
	rows, err := tx.query(ctx, `SELECT dedup_key FROM punches WHERE account_id = ? AND `+in, accountID, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	tx.addHeldKeys(accountID, keys, out)
	return out, nil
}

// PunchRef is an accepted punch as normalization needs it.
type PunchRef struct {
	EmployeeID string
	DeviceID   string
	Time       time.Time
	WorkDate   int
}

// AcceptedPunches returns the accepted punches of the employees between
// from and to (inclusive), in time order.
func (tx *Tx) AcceptedPunches(ctx context.Context, accountID string, employeeIDs []string, from, to time.Time) ([]PunchRef, error) {
	in, list := tx.in("employee_id", employeeIDs)
	// No ORDER BY: on PostgreSQL, short of statistics on a young table, the
	// planner served that order from an index on the account and a time
	// (auto_explain: punches_time, punches_received) and filtered every
	// accepted punch in it — 1,100 to 12,000 buffers a call in a backlog.
	// Sorted below instead; SQLite is pinned to the same index.
	rows, err := tx.query(ctx, `SELECT employee_id, device_id, punch_time, work_date FROM punches`+tx.indexedBy("punches_employee")+`
		WHERE account_id = ? AND status = 'accepted' AND `+in+` AND punch_time BETWEEN ? AND ?`,
		accountID, list, micros(from), micros(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PunchRef
	for rows.Next() {
		var r PunchRef
		var t int64
		if err := rows.Scan(&r.EmployeeID, &r.DeviceID, &t, &r.WorkDate); err != nil {
			return nil, err
		}
		r.Time = fromMicros(t)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if held := tx.holder().heldPunches; len(held) > 0 {
		want := make(map[string]bool, len(employeeIDs))
		for _, e := range employeeIDs {
			want[e] = true
		}
		for _, p := range held {
			if p.AccountID == accountID && p.Status == attendance.PunchAccepted && p.EmployeeID != nil &&
				want[*p.EmployeeID] && !p.Time.Before(from) && !p.Time.After(to) {
				out = append(out, PunchRef{EmployeeID: *p.EmployeeID, DeviceID: p.DeviceID, Time: p.Time, WorkDate: p.WorkDate})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b PunchRef) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// AcceptPunch turns a rejected punch into an accepted one (a release), with
// the normalization the release computed.
func (tx *Tx) AcceptPunch(ctx context.Context, p *attendance.Punch) error {
	if err := tx.holder().flushPunches(ctx); err != nil {
		return err
	}
	res, err := tx.exec(ctx, `UPDATE punches SET status = 'accepted', reason = NULL, detail = '', employee_id = ?, punch_time = ?,
		local_time = ?, local_date = ?, work_date = ?, clock_offset_seconds = ?, direction = ?, direction_source = ?, method = ?,
		event_id = ?, released_at = ?
		WHERE id = ? AND account_id = ? AND status = 'rejected'`,
		nullString(p.EmployeeID), micros(p.Time), p.LocalTime, p.LocalDate, p.WorkDate, p.ClockOffsetSeconds,
		string(p.Direction), string(p.DirectionSource), string(p.Method), nullString(p.EventID), micros(p.ReleasedAt), p.ID, p.AccountID)
	if err != nil {
		return fmt.Errorf("release punch: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return attendance.NotFound("rejected punch", p.ID)
	}
	return nil
}

// Punch reads one punch record of the account, accepted or rejected.
func (s *Store) Punch(ctx context.Context, accountID, punchID string) (attendance.Punch, error) {
	return readPunch(ctx, s.reader(), accountID, punchID, "")
}

// RejectedPunch reads one punch record of the account for update.
func (tx *Tx) RejectedPunch(ctx context.Context, accountID, punchID string) (attendance.Punch, error) {
	if err := tx.holder().flushPunches(ctx); err != nil {
		return attendance.Punch{}, err
	}
	lock := ""
	if tx.dialect == Postgres {
		lock = " FOR UPDATE OF p" // the employee side of the join may be NULL
	}
	return readPunch(ctx, tx.conn, accountID, punchID, lock)
}

func readPunch(ctx context.Context, c conn, accountID, punchID, lock string) (attendance.Punch, error) {
	p, err := scanPunch(c.queryRow(ctx, `SELECT `+punchSelect+` FROM `+punchFrom+` WHERE p.account_id = ? AND p.id = ?`+lock, accountID, punchID))
	if errors.Is(err, sql.ErrNoRows) {
		return p, attendance.NotFound("punch", punchID)
	}
	return p, err
}

// HeldForBadge returns the account's punches held back because badge was not
// registered, in time order.
func (tx *Tx) HeldForBadge(ctx context.Context, accountID, badge string) ([]attendance.Punch, error) {
	if err := tx.holder().flushPunches(ctx); err != nil {
		return nil, err
	}
	rows, err := tx.query(ctx, `SELECT `+punchSelect+` FROM `+punchFrom+`
		WHERE p.account_id = ? AND p.status = 'rejected' AND p.badge_number = ? AND p.reason = 'unregistered_badge'
		ORDER BY p.punch_time, p.id`, accountID, badge)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.Punch
	for rows.Next() {
		p, err := scanPunch(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PunchSorts are the fields punch lists sort by; the first is the default.
var PunchSorts = []Column{
	{Name: "timestamp", Kind: KindInt, Expr: "p.punch_time"},
	{Name: "received_at", Kind: KindInt, Expr: "p.received_at"},
}

// PunchQuery selects punches of one account. Zero values do not filter.
type PunchQuery struct {
	Status       attendance.PunchStatus
	DeviceID     string
	EmployeeID   string
	BadgeNumber  string
	Direction    string
	Site         string
	Reason       string
	LocalFrom    int       // YYYYMMDD, inclusive: the punch's local date in its device's zone
	LocalTo      int       // YYYYMMDD, inclusive
	From, To     time.Time // punch instants, inclusive
	ReceivedFrom time.Time // inclusive
	ReceivedTo   time.Time // inclusive
}

// widestOffset bounds how far a local date can be from the same UTC date
// (UTC−12 to UTC+14), so a local-date filter can use the time index.
const widestOffset = 15 * time.Hour

// ListPunches returns one page of punches.
func (s *Store) ListPunches(ctx context.Context, accountID string, q PunchQuery, p ListParams) (Page[attendance.Punch], error) {
	status := "accepted"
	if q.Status == attendance.PunchRejected {
		status = "rejected"
	}
	// The status is spliced, not bound, so that SQLite sees which partial
	// index applies.
	l := listSQL{from: punchFrom, cols: punchSelect, tieExpr: "p.seq", tieKind: KindInt, countFrom: "punches p",
		where: []string{"p.account_id = ?", "p.status = '" + status + "'"}, args: []any{accountID}}
	add := func(cond string, args ...any) {
		l.where = append(l.where, cond)
		l.args = append(l.args, args...)
	}
	if q.DeviceID != "" {
		add("p.device_id = ?", q.DeviceID)
	}
	if q.EmployeeID != "" {
		add("p.employee_id = ?", q.EmployeeID)
	}
	switch {
	case q.BadgeNumber != "" && status == "accepted":
		// Accepted punches always have their employee: the employee index serves.
		add("p.employee_id IN (SELECT id FROM employees WHERE account_id = ? AND badge_number = ?)", accountID, q.BadgeNumber)
	case q.BadgeNumber != "":
		add("p.badge_number = ?", q.BadgeNumber)
	}
	if q.Direction != "" {
		add("p.direction = ?", q.Direction)
	}
	if q.Reason != "" {
		add("p.reason = ?", q.Reason)
	}
	if q.Site != "" {
		add("p.device_id IN (SELECT id FROM devices WHERE account_id = ? AND site = ?)", accountID, q.Site)
	}
	if q.LocalFrom != 0 {
		add("p.local_date >= ?", q.LocalFrom)
		add("p.punch_time >= ?", micros(dateStart(q.LocalFrom).Add(-widestOffset)))
	}
	if q.LocalTo != 0 {
		add("p.local_date <= ?", q.LocalTo)
		add("p.punch_time < ?", micros(dateStart(q.LocalTo).Add(24*time.Hour+widestOffset)))
	}
	if !q.From.IsZero() {
		add("p.punch_time >= ?", micros(q.From))
	}
	if !q.To.IsZero() {
		add("p.punch_time <= ?", micros(q.To))
	}
	if !q.ReceivedFrom.IsZero() {
		add("p.received_at >= ?", micros(q.ReceivedFrom))
	}
	if !q.ReceivedTo.IsZero() {
		add("p.received_at <= ?", micros(q.ReceivedTo))
	}
	return listQuery(ctx, s.reader(), l, p, scanPunch)
}

func dateStart(d int) time.Time {
	return time.Date(d/10000, time.Month(d/100%100), d%100, 0, 0, 0, 0, time.UTC)
}

// UpdateRejection changes why a rejected punch is held back (a release that
// found another reason).
func (tx *Tx) UpdateRejection(ctx context.Context, p *attendance.Punch) error {
	if err := tx.holder().flushPunches(ctx); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `UPDATE punches SET reason = ?, detail = ?, employee_id = ? WHERE id = ? AND account_id = ? AND status = 'rejected'`,
		string(p.Reason), p.Detail, nullString(p.EmployeeID), p.ID, p.AccountID)
	return err
}

// RejectedSorts are the fields lists of held-back punches sort by; the first is the default.
var RejectedSorts = []Column{
	{Name: "received_at", Kind: KindInt, Expr: "p.received_at"},
	{Name: "timestamp", Kind: KindInt, Expr: "p.punch_time"},
}

// PunchByDedupKey reads the punch record an account stores under a dedup key.
func (tx *Tx) PunchByDedupKey(ctx context.Context, accountID, key string) (attendance.Punch, error) {
	if err := tx.holder().flushPunches(ctx); err != nil {
		return attendance.Punch{}, err
	}
	p, err := scanPunch(tx.queryRow(ctx, `SELECT `+punchSelect+` FROM `+punchFrom+` WHERE p.account_id = ? AND p.dedup_key = ?`, accountID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return p, attendance.NotFound("punch", key)
	}
	return p, err
}
