package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

const commandCols = `seq, id, account_id, device_id, COALESCE(batch_id, ''), command, payload, source, status, total, succeeded, failed,
	return_code, error_code, error_message, created_at, sent_at, completed_at, expires_at`

func scanCommand(r scanner) (attendance.Command, error) {
	var c attendance.Command
	var payload string
	var ret sql.NullInt64
	var created, sent, completed, expires int64
	err := r.Scan(&c.Seq, &c.ID, &c.AccountID, &c.DeviceID, &c.BatchID, &c.Kind, &payload, &c.Source, &c.Status, &c.Total,
		&c.Succeeded, &c.Failed, &ret, &c.ErrorCode, &c.ErrorMessage, &created, &sent, &completed, &expires)
	if err != nil {
		return c, err
	}
	c.Payload = []byte(payload)
	if ret.Valid {
		v := int(ret.Int64)
		c.ReturnCode = &v
	}
	c.CreatedAt, c.SentAt, c.CompletedAt, c.ExpiresAt = fromMicros(created), fromMicros(sent), fromMicros(completed), fromMicros(expires)
	return c, nil
}

// InsertCommand records a command and its lines (Status queued). It sets
// the command's ID, Seq and counts, and the lines' Seq.
func (tx *Tx) InsertCommand(ctx context.Context, c *attendance.Command, lines []attendance.CommandLine) error {
	if c.ID == "" {
		c.ID = id.New(id.Command)
	}
	c.Status, c.Total, c.CreatedAt = attendance.CommandQueued, len(lines), tx.Now
	err := tx.queryRow(ctx, `INSERT INTO commands (id, account_id, device_id, batch_id, command, payload, source, status, total, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		c.ID, c.AccountID, c.DeviceID, emptyNull(c.BatchID), c.Kind, string(c.Payload), c.Source, c.Status, c.Total,
		micros(c.CreatedAt), micros(c.ExpiresAt)).Scan(&c.Seq)
	if err != nil {
		return fmt.Errorf("insert command: %w", err)
	}
	for i := range lines {
		lines[i].CommandSeq, lines[i].DeviceID, lines[i].Status = c.Seq, c.DeviceID, attendance.CommandQueued
	}
	return tx.insertLines(ctx, lines)
}

func (tx *Tx) insertLines(ctx context.Context, lines []attendance.CommandLine) error {
	const cols = 6
	for start := 0; start < len(lines); start += insertChunk {
		chunk := lines[start:min(start+insertChunk, len(lines))]
		row := "(?, ?, ?, ?, ?, ?)"
		args := make([]any, 0, len(chunk)*cols)
		for _, l := range chunk {
			args = append(args, l.CommandSeq, l.DeviceID, l.Item, l.Key, l.Text, l.Status)
		}
		rows, err := tx.query(ctx, `INSERT INTO command_lines (command_seq, device_id, item, item_key, text, status) VALUES `+
			valuesRows(row, len(chunk))+` RETURNING seq`, args...)
		if err != nil {
			return fmt.Errorf("insert command lines: %w", err)
		}
		i := start
		for rows.Next() {
			if err := rows.Scan(&lines[i].Seq); err != nil {
				rows.Close()
				return err
			}
			i++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// maxItemErrors bounds the failed items read with a command.
const maxItemErrors = 100

// Command reads a command of the account, with its first failed items.
func (s *Store) Command(ctx context.Context, accountID, commandID string) (attendance.Command, error) {
	c, err := scanCommand(s.reader().queryRow(ctx, `SELECT `+commandCols+` FROM commands WHERE account_id = ? AND id = ?`, accountID, commandID))
	if errors.Is(err, sql.ErrNoRows) {
		return c, attendance.NotFound("command", commandID)
	}
	if err != nil {
		return c, err
	}
	c.Errors, err = itemErrors(ctx, s.reader(), c.Seq)
	return c, err
}

func itemErrors(ctx context.Context, c conn, commandSeq int64) ([]attendance.CommandItemError, error) {
	rows, err := c.query(ctx, `SELECT item, item_key, return_code FROM command_lines WHERE command_seq = ? AND status = 'failed'
		ORDER BY item LIMIT ?`, commandSeq, maxItemErrors)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.CommandItemError
	for rows.Next() {
		var e attendance.CommandItemError
		var ret sql.NullInt64
		if err := rows.Scan(&e.Item, &e.Key, &ret); err != nil {
			return nil, err
		}
		e.ReturnCode = int(ret.Int64)
		e.Code, e.Message = attendance.CommandFailure(e.ReturnCode)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CommandSorts are the fields command lists sort by.
var CommandSorts = []Column{{Name: "created_at", Kind: KindInt, Expr: "seq"}}

// CommandQuery selects commands of an account. Zero values do not filter.
type CommandQuery struct {
	DeviceID string
	BatchID  string
	Status   string
	Kind     string
}

// ListCommands returns one page of the account's commands.
func (s *Store) ListCommands(ctx context.Context, accountID string, q CommandQuery, p ListParams) (Page[attendance.Command], error) {
	l := listSQL{from: "commands", cols: commandCols, tieExpr: "seq", tieKind: KindInt, countFrom: "commands",
		where: []string{"account_id = ?"}, args: []any{accountID}}
	for _, f := range []struct{ cond, v string }{
		{"device_id = ?", q.DeviceID}, {"batch_id = ?", q.BatchID}, {"status = ?", q.Status}, {"command = ?", q.Kind},
	} {
		if f.v != "" {
			l.where, l.args = append(l.where, f.cond), append(l.args, f.v)
		}
	}
	return listQuery(ctx, s.reader(), l, p, scanCommand)
}

// Outbox is what a device is sent on a poll: its oldest lines that are
// queued, or were sent before resendBefore without an answer, up to
// maxLines lines and maxBytes bytes, in order.
func (tx *Tx) Outbox(ctx context.Context, deviceID string, resendBefore time.Time, maxLines int) ([]attendance.CommandLine, error) {
	rows, err := tx.query(ctx, `SELECT seq, command_seq, item, item_key, text, status, attempts, sent_at FROM command_lines
		WHERE device_id = ? AND status IN ('queued', 'sent') AND (status = 'queued' OR sent_at <= ?) ORDER BY seq LIMIT ?`,
		deviceID, micros(resendBefore), maxLines)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.CommandLine
	for rows.Next() {
		l := attendance.CommandLine{DeviceID: deviceID}
		var sent int64
		if err := rows.Scan(&l.Seq, &l.CommandSeq, &l.Item, &l.Key, &l.Text, &l.Status, &l.Attempts, &sent); err != nil {
			return nil, err
		}
		l.SentAt = fromMicros(sent)
		out = append(out, l)
	}
	return out, rows.Err()
}

// MarkSent records that lines went out to their device now: the lines are
// sent (once more), and their commands too.
func (tx *Tx) MarkSent(ctx context.Context, lines []attendance.CommandLine) error {
	if len(lines) == 0 {
		return nil
	}
	seqs := make([]int64, len(lines))
	commands := map[int64]bool{}
	for i, l := range lines {
		seqs[i] = l.Seq
		commands[l.CommandSeq] = true
	}
	in, list := tx.inInts("seq", seqs)
	if _, err := tx.exec(ctx, `UPDATE command_lines SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE `+in, micros(tx.Now), list); err != nil {
		return err
	}
	cseqs := make([]int64, 0, len(commands))
	for s := range commands {
		cseqs = append(cseqs, s)
	}
	in, list = tx.inInts("seq", cseqs)
	_, err := tx.exec(ctx, `UPDATE commands SET status = 'sent', sent_at = CASE WHEN sent_at = 0 THEN ? ELSE sent_at END
		WHERE status = 'queued' AND `+in, micros(tx.Now), list)
	return err
}

// LineResult is a device's answer to one line.
type LineResult struct {
	Seq    int64
	Return int
}

// Judge decides whether a device's return code means the line succeeded.
type Judge func(kind attendance.CommandKind, line attendance.CommandLine, code int) bool

// ApplyResults records a device's answers to its lines (answers to lines
// of other devices, or already answered, are ignored: a device may report
// twice) and completes the commands whose lines are all answered. It
// returns the commands that reached a final status. The answers of a reply
// are written together: one statement per outcome and per command, not per
// line.
func (tx *Tx) ApplyResults(ctx context.Context, deviceID string, results []LineResult, judge Judge) ([]attendance.Command, error) {
	if len(results) == 0 {
		return nil, nil
	}
	codes := make(map[int64]int, len(results))
	seqs := make([]int64, 0, len(results))
	for _, r := range results {
		if _, dup := codes[r.Seq]; !dup {
			seqs = append(seqs, r.Seq)
		}
		codes[r.Seq] = r.Return
	}
	in, list := tx.inInts("l.seq", seqs)
	rows, err := tx.query(ctx, `SELECT l.seq, l.command_seq, l.item, l.item_key, l.text, c.command, c.total FROM command_lines l
		JOIN commands c ON c.seq = l.command_seq
		WHERE l.device_id = ? AND l.status IN ('queued', 'sent') AND `+in+` ORDER BY l.seq`, deviceID, list)
	if err != nil {
		return nil, err
	}
	type outcome struct {
		status attendance.CommandStatus
		code   int
	}
	type tally struct {
		succeeded, failed int
		code              *int // the code the command keeps: its first failure's, or a one-line command's
	}
	byOutcome := map[outcome][]int64{}
	tallies := map[int64]*tally{}
	var order []int64
	for rows.Next() {
		var l attendance.CommandLine
		var kind attendance.CommandKind
		var total int
		if err := rows.Scan(&l.Seq, &l.CommandSeq, &l.Item, &l.Key, &l.Text, &kind, &total); err != nil {
			rows.Close()
			return nil, err
		}
		code := codes[l.Seq]
		o := outcome{attendance.CommandFailed, code}
		if judge(kind, l, code) {
			o.status = attendance.CommandSucceeded
		}
		byOutcome[o] = append(byOutcome[o], l.Seq)
		t := tallies[l.CommandSeq]
		if t == nil {
			t = &tally{}
			tallies[l.CommandSeq] = t
			order = append(order, l.CommandSeq)
		}
		if o.status == attendance.CommandSucceeded {
			t.succeeded++
		} else {
			t.failed++
		}
		if t.code == nil && (o.status == attendance.CommandFailed || total == 1) {
			c := code
			t.code = &c
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for o, lines := range byOutcome {
		in, list := tx.inInts("seq", lines)
		if _, err := tx.exec(ctx, `UPDATE command_lines SET status = ?, return_code = ?, answered_at = ? WHERE `+in,
			o.status, o.code, micros(tx.Now), list); err != nil {
			return nil, err
		}
	}
	var done []attendance.Command
	for _, seq := range order {
		t := tallies[seq]
		var code any
		if t.code != nil {
			code = *t.code
		}
		if _, err := tx.exec(ctx, `UPDATE commands SET succeeded = succeeded + ?, failed = failed + ?,
			return_code = COALESCE(return_code, ?) WHERE seq = ?`, t.succeeded, t.failed, code, seq); err != nil {
			return nil, err
		}
		c, finished, err := tx.finishCommand(ctx, seq)
		if err != nil {
			return nil, err
		}
		if finished {
			done = append(done, c)
		}
	}
	return done, nil
}

// FinishIfDone completes a command whose lines are all answered (or that
// has none), and reports whether it did.
func (tx *Tx) FinishIfDone(ctx context.Context, seq int64) (attendance.Command, bool, error) {
	return tx.finishCommand(ctx, seq)
}

// finishCommand completes a command whose lines are all answered.
func (tx *Tx) finishCommand(ctx context.Context, seq int64) (attendance.Command, bool, error) {
	c, err := scanCommand(tx.queryRow(ctx, `UPDATE commands SET
		status = CASE WHEN failed > 0 THEN 'failed' ELSE 'succeeded' END, completed_at = ?
		WHERE seq = ? AND status IN ('queued', 'sent') AND succeeded + failed >= total
		RETURNING `+commandCols, micros(tx.Now), seq))
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if c.Status == attendance.CommandFailed {
		if err := tx.describeFailure(ctx, &c); err != nil {
			return c, false, err
		}
	}
	return c, true, nil
}

// describeFailure sets a failed command's error from its failed lines.
func (tx *Tx) describeFailure(ctx context.Context, c *attendance.Command) error {
	errs, err := itemErrors(ctx, tx.conn, c.Seq)
	if err != nil || len(errs) == 0 {
		return err
	}
	c.Errors = errs
	c.ErrorCode, c.ErrorMessage = errs[0].Code, errs[0].Message
	if c.Total > 1 {
		c.ErrorMessage = fmt.Sprintf("%d of %d items failed; the first: %s", c.Failed, c.Total, errs[0].Message)
	}
	_, err = tx.exec(ctx, `UPDATE commands SET error_code = ?, error_message = ? WHERE seq = ?`, c.ErrorCode, c.ErrorMessage, c.Seq)
	return err
}

// ExpireCommands ends the commands whose deadline has passed before all
// their lines were answered: their unanswered lines and they become
// expired. It returns them.
func (tx *Tx) ExpireCommands(ctx context.Context, limit int) ([]attendance.Command, error) {
	seqs, err := queryAll(ctx, tx.conn, scanValue[int64], `SELECT seq FROM commands WHERE status IN ('queued', 'sent') AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`+tx.skipLocked(), micros(tx.Now), limit)
	if err != nil {
		return nil, err
	}
	var out []attendance.Command
	for _, seq := range seqs {
		if _, err := tx.exec(ctx, `UPDATE command_lines SET status = 'expired' WHERE command_seq = ? AND status IN ('queued', 'sent')`, seq); err != nil {
			return nil, err
		}
		c, err := scanCommand(tx.queryRow(ctx, `UPDATE commands SET status = 'expired', completed_at = ?, error_code = 'expired',
			error_message = CASE WHEN sent_at = 0 THEN 'The device did not poll for the command before it expired: it is offline or unreachable.'
				ELSE 'The device did not answer every line of the command before it expired.' END
			WHERE seq = ? AND status IN ('queued', 'sent') RETURNING `+commandCols, micros(tx.Now), seq))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// inInts is in for integer lists.
func (c conn) inInts(column string, values []int64) (string, any) {
	if c.dialect == Postgres {
		if values == nil {
			values = []int64{}
		}
		return column + " = ANY(?)", values
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v)
	}
	b.WriteByte(']')
	return column + " IN (SELECT value FROM json_each(?))", b.String()
}

// InsertBatch records a batch (its commands are inserted apart).
func (tx *Tx) InsertBatch(ctx context.Context, b *attendance.Batch) error {
	b.ID, b.CreatedAt = id.New(id.Batch), tx.Now
	_, err := tx.exec(ctx, `INSERT INTO batches (id, account_id, command, payload, target, devices, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.AccountID, b.Kind, string(b.Payload), string(b.Target), b.Devices, micros(b.CreatedAt))
	return err
}

const batchCols = `id, account_id, command, payload, target, devices, created_at, completed_at`

func scanBatch(r scanner) (attendance.Batch, error) {
	var b attendance.Batch
	var payload, target string
	var created, completed int64
	err := r.Scan(&b.ID, &b.AccountID, &b.Kind, &payload, &target, &b.Devices, &created, &completed)
	b.Payload, b.Target, b.CreatedAt, b.CompletedAt = []byte(payload), []byte(target), fromMicros(created), fromMicros(completed)
	return b, err
}

// Batch reads a batch of the account with its current commands (the
// newest per device) and their first failed items.
func (s *Store) Batch(ctx context.Context, accountID, batchID string) (attendance.Batch, error) {
	return readBatch(ctx, s.reader(), accountID, batchID)
}

// Batch reads a batch in the transaction.
func (tx *Tx) Batch(ctx context.Context, accountID, batchID string) (attendance.Batch, error) {
	return readBatch(ctx, tx.conn, accountID, batchID)
}

func readBatch(ctx context.Context, c conn, accountID, batchID string) (attendance.Batch, error) {
	b, err := scanBatch(c.queryRow(ctx, `SELECT `+batchCols+` FROM batches WHERE account_id = ? AND id = ?`, accountID, batchID))
	if errors.Is(err, sql.ErrNoRows) {
		return b, attendance.NotFound("batch", batchID)
	}
	if err != nil {
		return b, err
	}
	b.Commands, err = queryAll(ctx, c, scanCommand, `SELECT `+commandCols+` FROM commands c WHERE batch_id = ?
		AND NOT EXISTS (SELECT 1 FROM commands n WHERE n.batch_id = c.batch_id AND n.device_id = c.device_id AND n.seq > c.seq)
		ORDER BY seq`, batchID)
	if err != nil {
		return b, err
	}
	for i := range b.Commands {
		if b.Commands[i].Failed > 0 {
			if b.Commands[i].Errors, err = itemErrors(ctx, c, b.Commands[i].Seq); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

// BatchSorts are the fields batch lists sort by.
var BatchSorts = []Column{{Name: "created_at", Kind: KindInt}}

// ListBatches returns one page of the account's batches (without their
// commands).
func (s *Store) ListBatches(ctx context.Context, accountID string, p ListParams) (Page[attendance.Batch], error) {
	l := listSQL{from: "batches", cols: batchCols, tieExpr: "id", tieKind: KindText, countFrom: "batches",
		where: []string{"account_id = ?"}, args: []any{accountID}}
	return listQuery(ctx, s.reader(), l, p, scanBatch)
}

// CompleteBatch marks a batch completed when none of its commands is open;
// true the first time only.
func (tx *Tx) CompleteBatch(ctx context.Context, batchID string) (bool, error) {
	res, err := tx.exec(ctx, `UPDATE batches SET completed_at = ? WHERE id = ? AND completed_at = 0
		AND NOT EXISTS (SELECT 1 FROM commands WHERE batch_id = ? AND status IN ('queued', 'sent'))`, micros(tx.Now), batchID, batchID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReopenBatch marks a batch running again (its failures are being retried).
func (tx *Tx) ReopenBatch(ctx context.Context, batchID string) error {
	_, err := tx.exec(ctx, `UPDATE batches SET completed_at = 0 WHERE id = ?`, batchID)
	return err
}

// OpenAutoCommand finds the device's automatic command of kind that has not
// been sent yet (new changes join it: rapid changes coalesce).
func (tx *Tx) OpenAutoCommand(ctx context.Context, deviceID string, kind attendance.CommandKind) (attendance.Command, bool, error) {
	c, err := scanCommand(tx.queryRow(ctx, `SELECT `+commandCols+` FROM commands WHERE device_id = ? AND source = ? AND command = ? AND status = 'queued'
		ORDER BY seq DESC LIMIT 1`+tx.forUpdate(), deviceID, attendance.CommandSourceAuto, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// SupersedeAutoLines takes out of the device's unsent automatic commands
// the lines for these badges (a newer change replaces them), and returns
// how many it took out.
func (tx *Tx) SupersedeAutoLines(ctx context.Context, deviceID string, badges []string) (int, error) {
	in, list := tx.in("l.item_key", badges)
	rows, err := tx.query(ctx, `SELECT l.seq, l.command_seq FROM command_lines l JOIN commands c ON c.seq = l.command_seq
		WHERE l.device_id = ? AND l.status = 'queued' AND c.source = ? AND c.status = 'queued' AND `+in,
		deviceID, attendance.CommandSourceAuto, list)
	if err != nil {
		return 0, err
	}
	type ref struct{ line, command int64 }
	var refs []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.line, &r.command); err != nil {
			rows.Close()
			return 0, err
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range refs {
		if _, err := tx.exec(ctx, `DELETE FROM command_lines WHERE seq = ?`, r.line); err != nil {
			return 0, err
		}
		if _, err := tx.exec(ctx, `UPDATE commands SET total = total - 1 WHERE seq = ?`, r.command); err != nil {
			return 0, err
		}
	}
	// A command left without lines goes away.
	if _, err := tx.exec(ctx, `DELETE FROM commands WHERE device_id = ? AND source = ? AND status = 'queued' AND total = 0`,
		deviceID, attendance.CommandSourceAuto); err != nil {
		return 0, err
	}
	return len(refs), nil
}

// AppendLines adds lines to a queued command.
func (tx *Tx) AppendLines(ctx context.Context, c *attendance.Command, lines []attendance.CommandLine) error {
	var next int
	if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(item) + 1, 0) FROM command_lines WHERE command_seq = ?`, c.Seq).Scan(&next); err != nil {
		return err
	}
	for i := range lines {
		lines[i].CommandSeq, lines[i].DeviceID, lines[i].Status, lines[i].Item = c.Seq, c.DeviceID, attendance.CommandQueued, next+i
	}
	if err := tx.insertLines(ctx, lines); err != nil {
		return err
	}
	c.Total += len(lines)
	_, err := tx.exec(ctx, `UPDATE commands SET total = total + ? WHERE seq = ?`, len(lines), c.Seq)
	return err
}

// CommandLines reads a command's lines (tests and the batch retry).
func (tx *Tx) CommandLines(ctx context.Context, commandSeq int64) ([]attendance.CommandLine, error) {
	rows, err := tx.query(ctx, `SELECT seq, command_seq, device_id, item, item_key, text, status, attempts, return_code, sent_at, answered_at
		FROM command_lines WHERE command_seq = ? ORDER BY item`, commandSeq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.CommandLine
	for rows.Next() {
		var l attendance.CommandLine
		var ret sql.NullInt64
		var sent, answered int64
		if err := rows.Scan(&l.Seq, &l.CommandSeq, &l.DeviceID, &l.Item, &l.Key, &l.Text, &l.Status, &l.Attempts, &ret, &sent, &answered); err != nil {
			return nil, err
		}
		if ret.Valid {
			v := int(ret.Int64)
			l.ReturnCode = &v
		}
		l.SentAt, l.AnsweredAt = fromMicros(sent), fromMicros(answered)
		out = append(out, l)
	}
	return out, rows.Err()
}

// DeviceUsers returns what a device reported of these users, by badge number.
func (tx *Tx) DeviceUsers(ctx context.Context, deviceID string, pins []string) (map[string]attendance.DeviceUser, error) {
	in, list := tx.in("pin", pins)
	rows, err := tx.query(ctx, `SELECT pin, name, privilege, card, has_password, user_group FROM device_users WHERE device_id = ? AND `+in, deviceID, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]attendance.DeviceUser, len(pins))
	for rows.Next() {
		u := attendance.DeviceUser{DeviceID: deviceID}
		var priv sql.NullInt64
		if err := rows.Scan(&u.PIN, &u.Name, &priv, &u.Card, &u.HasPassword, &u.Group); err != nil {
			return nil, err
		}
		u.Privilege = intPtr(priv)
		out[u.PIN] = u
	}
	return out, rows.Err()
}

// ActiveEmployees returns the account's active employees, by badge number
// (the roster sync_all_employees sends).
func (tx *Tx) ActiveEmployees(ctx context.Context, accountID string) ([]attendance.Employee, error) {
	return queryAll(ctx, tx.conn, scanEmployee, `SELECT `+employeeCols+` FROM employees WHERE account_id = ? AND deleted_at IS NULL AND active = ?
		ORDER BY badge_number`, accountID, true)
}

// AccountDevices returns the account's live devices, of one site when site
// is not empty, or with these IDs when ids is not nil; in creation order.
func (tx *Tx) AccountDevices(ctx context.Context, accountID, site string, ids []string) ([]attendance.Device, error) {
	q := `SELECT ` + deviceCols + ` FROM devices WHERE account_id = ? AND deleted_at IS NULL`
	args := []any{accountID}
	if site != "" {
		q += ` AND site = ?`
		args = append(args, site)
	}
	if ids != nil {
		in, list := tx.in("id", ids)
		q += ` AND ` + in
		args = append(args, list)
	}
	return queryAll(ctx, tx.conn, scanDevice, q+` ORDER BY created_at, id`, args...)
}

// BatchCounts counts a batch's current commands (the newest per device) by
// status, and their items: what its progress shows without reading them all.
func (s *Store) BatchCounts(ctx context.Context, batchID string) (devices, items attendance.Counts, err error) {
	err = s.reader().queryRow(ctx, `SELECT count(*),
		COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status IN ('failed', 'expired') THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(total), 0), COALESCE(SUM(succeeded), 0), COALESCE(SUM(failed), 0)
		FROM commands c WHERE batch_id = ?
		AND NOT EXISTS (SELECT 1 FROM commands n WHERE n.batch_id = c.batch_id AND n.device_id = c.device_id AND n.seq > c.seq)`, batchID).
		Scan(&devices.Total, &devices.Succeeded, &devices.Failed, &items.Total, &items.Succeeded, &items.Failed)
	devices.Pending = devices.Total - devices.Succeeded - devices.Failed
	items.Pending = items.Total - items.Succeeded - items.Failed
	return devices, items, err
}
