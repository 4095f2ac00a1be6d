package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/ingest"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestConcurrentDevicesOneEmployee: two punches of one employee 20 s apart,
// normalized at the same moment by two nodes, still see each other: one is
// accepted and the other held back by the duplicate window; and a re-upload
// racing its original is stored once.
func TestConcurrentDevicesOneEmployee(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			u := b.NewURL(t)
			s1 := storetest.OpenURL(t, u, store.Options{})
			s2 := storetest.OpenURL(t, u, store.Options{})
			acct, _ := storetest.NewAccount(t, s1, "Acme")
			var devs []attendance.Device
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s1.InTx(ctx, func(tx *store.Tx) error {
				for _, sn := range []string{"A1"} {
					d, err := tx.CreateDevice(ctx, acct.ID, attendance.DeviceInput{SerialNumber: attendance.Some(sn), Timezone: attendance.Some("UTC")})
					if err != nil {
						return err
					}
					devs = append(devs, d)
				}
				_, err := tx.CreateEmployee(ctx, acct.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("7")})
				return err
			}))
			day := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
			const rounds = 15
			var wg sync.WaitGroup
			for i, s := range []*store.Store{s1, s2} {
				wg.Go(func() {
					for r := range rounds {
						at := day.AddDate(0, 0, r).Add(8*time.Hour + time.Duration(i)*20*time.Second)
						wall := at
						in := ingest.Input{Badge: "7", DeviceTime: wall.Format("2006-01-02 15:04:05"), Wall: wall,
							DedupKey: ingest.DeviceDedupKey(devs[0].SerialNumber, "7", wall.Format("2006-01-02 15:04:05"), nil, "1"), Verify: "1"}
						// The same record twice: a re-upload racing its original.
						for range 2 {
							err := s.InTx(ctx, func(tx *store.Tx) error {
								_, err := ingest.Process(ctx, tx, ingest.Batch{Device: devs[0], Settings: acct.Settings, Source: attendance.SourcePush,
									ReceivedAt: at.Add(time.Minute), Inputs: []ingest.Input{in}})
								return err
							})
							if err != nil {
								t.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			page, err := s1.ListPunches(ctx, acct.ID, store.PunchQuery{Status: attendance.PunchAccepted}, store.ListParams{Sort: store.PunchSorts[0], Limit: 500})
			must(err)
			held, err := s1.ListPunches(ctx, acct.ID, store.PunchQuery{Status: attendance.PunchRejected, Reason: string(attendance.ReasonDuplicateWindow)},
				store.ListParams{Sort: store.PunchSorts[0], Limit: 500})
			must(err)
			if page.Total != rounds || held.Total != rounds {
				t.Fatalf("%d accepted and %d held back, want %d of each: one punch a day, its twin within the window", page.Total, held.Total, rounds)
			}
			perDay := map[int]int{}
			for _, p := range page.Items {
				perDay[p.WorkDate]++
				if p.Direction != attendance.In {
					t.Errorf("%d: the day's only punch is %s", p.WorkDate, p.Direction)
				}
			}
			for d := range rounds {
				if n := perDay[attendance.DateInt(day.AddDate(0, 0, d))]; n != 1 {
					t.Errorf("day %d: %d accepted (%s)", d, n, fmt.Sprint(perDay))
				}
			}
		})
	}
}
