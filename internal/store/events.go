package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/punchconnect/punchconnect/internal/attendance"
)

// InsertEvents records events in the transaction of their cause.
func (tx *Tx) InsertEvents(ctx context.Context, events []attendance.Event) error {
	const cols = 8
	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		row := "(?, ?, ?, ?, ?, ?, ?, ?)"
		args := make([]any, 0, len(chunk)*cols)
		for _, e := range chunk {
			args = append(args, e.ID, e.AccountID, e.Type, micros(e.CreatedAt), emptyNull(e.DeviceID), emptyNull(e.EmployeeID), emptyNull(e.PunchID), string(e.Payload))
		}
		_, err := tx.exec(ctx, `INSERT INTO events (id, account_id, type, created_at, device_id, employee_id, punch_id, payload) VALUES `+
			strings.Repeat(row+", ", len(chunk)-1)+row, args...)
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	return nil
}

func emptyNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// EventsSince returns up to limit events of the account after seq, in order
// (tests and, later, delivery use it).
func (s *Store) EventsSince(ctx context.Context, accountID string, seq int64, limit int) ([]attendance.Event, error) {
	rows, err := s.reader().query(ctx, `SELECT seq, id, account_id, type, created_at, COALESCE(device_id, ''), COALESCE(employee_id, ''),
		COALESCE(punch_id, ''), payload FROM events WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?`, accountID, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attendance.Event
	for rows.Next() {
		var e attendance.Event
		var created int64
		var payload string
		if err := rows.Scan(&e.Seq, &e.ID, &e.AccountID, &e.Type, &created, &e.DeviceID, &e.EmployeeID, &e.PunchID, &payload); err != nil {
			return nil, err
		}
		e.CreatedAt, e.Payload = fromMicros(created), []byte(payload)
		out = append(out, e)
	}
	return out, rows.Err()
}
