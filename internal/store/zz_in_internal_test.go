package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
)

func TestZZInCost(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+t.TempDir()+"/x.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	acct := "acct_x"
	_, err = s.write.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'x', 0, 0)`, acct)
	if err != nil {
		t.Log(err)
	}
	base := time.Now().Add(-30 * 24 * time.Hour)
	n := 0
	for b := 0; b < 100; b++ {
		punches := make([]attendance.Punch, 1000)
		for j := range punches {
			n++
			emp := fmt.Sprintf("emp_%d", n%50000)
			punches[j] = attendance.Punch{ID: id.New(id.Punch), AccountID: acct, DeviceID: fmt.Sprintf("dev%d", n%200), EmployeeID: &emp,
				BadgeNumber: fmt.Sprint(n % 50000), Status: attendance.PunchAccepted, Time: base.Add(time.Duration(n*7) * time.Second),
				ReceivedAt: time.Now(), DeviceTime: "2026-03-28 09:01:23", LocalTime: "2026-03-28T09:01:23+01:00", Method: "fingerprint",
				Source: "push", Raw: "x", DedupKey: fmt.Sprintf("d|BENCH%05d|%d|%d", n%200, n%50000, n), Direction: "in"}
		}
		if err := s.InTx(ctx, func(tx *Tx) error { _, err := tx.InsertPunches(ctx, punches); return err }); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`SELECT dedup_key FROM punches WHERE account_id = ? AND dedup_key IN (SELECT value FROM json_each(?))`,
		`SELECT dedup_key FROM punches WHERE account_id = ? AND dedup_key = ?`,
		`SELECT dedup_key FROM punches WHERE account_id = ? AND dedup_key IN (?)`,
	} {
		err := s.InTx(ctx, func(tx *Tx) error {
			start := time.Now()
			const calls = 20000
			for i := 0; i < calls; i++ {
				k := fmt.Sprintf("d|BENCH%05d|%d|%d", i%200, i%50000, i*3)
				arg := any(k)
				if q[len(q)-2] == ')' && q[len(q)-3] == '?' && q[len(q)-4] == '(' && q[len(q)-5] != 'N' {
					arg = `["` + k + `"]`
				}
				rows, err := tx.query(ctx, q, acct, arg)
				if err != nil {
					return err
				}
				for rows.Next() {
				}
				rows.Close()
			}
			t.Logf("%6.1f µs/call  %s", float64(time.Since(start).Microseconds())/calls, q)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
