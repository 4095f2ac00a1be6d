package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

var batchRows = 1000

func BenchmarkRawInsert(b *testing.B) {
	s := storetest.SQLiteBackend().Open(b, store.Options{})
	acct, _ := storetest.NewAccount(b, s, "Bench")
	ctx := context.Background()
	base := time.Now().Add(-30 * 24 * time.Hour)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		punches := make([]attendance.Punch, batchRows)
		for j := range punches {
			n++
			emp := fmt.Sprintf("emp_%d", n%500)
			punches[j] = attendance.Punch{ID: id.New(id.Punch), AccountID: acct.ID, DeviceID: fmt.Sprintf("dev%d", n%16), EmployeeID: &emp,
				BadgeNumber: fmt.Sprint(n % 500), Status: attendance.PunchAccepted, Time: base.Add(time.Duration(n*7) * time.Second),
				ReceivedAt: time.Now(), DeviceTime: "2026-03-28 09:01:23", LocalTime: "2026-03-28T09:01:23+01:00", Method: "fingerprint",
				Source: "push", Raw: "1042\t2026-03-28 09:01:23\t0\t1\t0\t0\t0", DedupKey: fmt.Sprintf("d|BENCH%05d|%d|%d", n%16, n%500, n), Direction: "in"}
		}
		err := s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertPunches(ctx, punches)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batchRows)/b.Elapsed().Seconds(), "rows/s")
}
