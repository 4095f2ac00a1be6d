package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/commands"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestBatchTotalsAddUp: whatever devices answer — any codes, twice, for
// lines of other devices or none at all, before or after expiry — a batch's
// per-device results add up to its totals, every command's counts match its
// lines, and each final status has exactly one event.
func TestBatchTotalsAddUp(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := storetest.NewClock(storetest.Epoch)
			s := b.Open(t, store.Options{Now: clock.Now})
			ctx := context.Background()
			runs := 0
			rapid.Check(t, func(rt *rapid.T) {
				runs++
				acct, _ := storetest.NewAccount(t, s, fmt.Sprintf("Acct%d", runs))
				nDevices := rapid.IntRange(1, 4).Draw(rt, "devices")
				var devices []attendance.Device
				var ids []string
				for i := range nDevices {
					var d attendance.Device
					err := s.InTx(ctx, func(tx *store.Tx) (err error) {
						d, err = tx.CreateDevice(ctx, acct.ID, attendance.DeviceInput{SerialNumber: attendance.Some(fmt.Sprintf("P%05d%03d", runs, i)), Timezone: attendance.Some("UTC")})
						return err
					})
					if err != nil {
						rt.Fatal(err)
					}
					devices, ids = append(devices, d), append(ids, d.ID)
				}
				in := attendance.CommandInput{Kind: rapid.SampledFrom([]attendance.CommandKind{
					attendance.CommandSyncEmployees, attendance.CommandDeleteEmployees, attendance.CommandReboot,
				}).Draw(rt, "kind"), ExpiresAt: clock.Now().Add(time.Hour)}
				nItems := rapid.IntRange(1, 6).Draw(rt, "items")
				for i := range nItems {
					in.Employees = append(in.Employees, attendance.EmployeeRecord{BadgeNumber: fmt.Sprint(100 + i)})
					in.Badges = append(in.Badges, fmt.Sprint(100+i))
				}
				var batch attendance.Batch
				err := s.InTx(ctx, func(tx *store.Tx) (err error) {
					batch, err = commands.CreateBatch(ctx, tx, acct.ID, commands.BatchInput{Command: in, DeviceIDs: ids, Target: []byte(`{}`)})
					return err
				})
				if err != nil {
					rt.Fatal(err)
				}
				sent := map[string][]int64{} // device → lines it was sent
				steps := rapid.IntRange(1, 15).Draw(rt, "steps")
				for range steps {
					d := rapid.SampledFrom(devices).Draw(rt, "device")
					switch rapid.IntRange(0, 3).Draw(rt, "action") {
					case 0: // poll
						err = s.InTx(ctx, func(tx *store.Tx) error {
							lines, err := tx.Outbox(ctx, d.ID, clock.Now().Add(-time.Minute), rapid.IntRange(1, 4).Draw(rt, "room"))
							if err != nil {
								return err
							}
							for _, l := range lines {
								sent[d.ID] = append(sent[d.ID], l.Seq)
							}
							return tx.MarkSent(ctx, lines)
						})
					case 1: // answer (perhaps twice, perhaps for lines of another device)
						var results []store.LineResult
						from := rapid.SampledFrom(devices).Draw(rt, "from")
						for _, seq := range sent[from.ID] {
							if rapid.Bool().Draw(rt, "answer") {
								results = append(results, store.LineResult{Seq: seq, Return: rapid.SampledFrom([]int{0, 0, 0, -1, -10, -1002}).Draw(rt, "code")})
							}
						}
						results = append(results, store.LineResult{Seq: 1 << 40, Return: 0}) // no such line
						err = s.InTx(ctx, func(tx *store.Tx) error {
							done, err := tx.ApplyResults(ctx, d.ID, results, commands.Succeeded)
							if err != nil {
								return err
							}
							return commands.Finish(ctx, tx, done)
						})
					case 2:
						clock.Advance(time.Duration(rapid.IntRange(1, 90).Draw(rt, "minutes")) * time.Minute)
					case 3:
						_, err = commands.Expire(ctx, s, 100)
					}
					if err != nil {
						rt.Fatal(err)
					}
					checkBatch(rt, s, acct.ID, batch.ID, nDevices)
				}
			})
		})
	}
}

func checkBatch(rt *rapid.T, s *store.Store, accountID, batchID string, nDevices int) {
	ctx := context.Background()
	b, err := s.Batch(ctx, accountID, batchID)
	if err != nil {
		rt.Fatal(err)
	}
	var devSucceeded, devFailed, devPending, items, itemsDone int
	open := false
	for _, c := range b.Commands {
		if c.Succeeded+c.Failed+c.Pending() != c.Total || c.Pending() < 0 {
			rt.Fatalf("command %s counts %d+%d+%d != %d", c.ID, c.Succeeded, c.Failed, c.Pending(), c.Total)
		}
		var lines []attendance.CommandLine
		if err := s.InTx(ctx, func(tx *store.Tx) (err error) { lines, err = tx.CommandLines(ctx, c.Seq); return err }); err != nil {
			rt.Fatal(err)
		}
		by := map[attendance.CommandStatus]int{}
		for _, l := range lines {
			by[l.Status]++
		}
		if by[attendance.CommandSucceeded] != c.Succeeded || by[attendance.CommandFailed] != c.Failed || len(lines) != c.Total {
			rt.Fatalf("command %s: counts %d/%d/%d, lines %v", c.ID, c.Succeeded, c.Failed, c.Total, by)
		}
		switch {
		case c.Status == attendance.CommandSucceeded:
			devSucceeded++
			if c.Failed > 0 || c.Pending() > 0 {
				rt.Fatalf("succeeded with failures or pending items: %+v", c)
			}
		case c.Status == attendance.CommandFailed:
			devFailed++
			if c.Failed == 0 || c.Pending() > 0 || c.ErrorCode == "" {
				rt.Fatalf("failed without a failed item, or with items pending: %+v", c)
			}
		case c.Status == attendance.CommandExpired:
			devFailed++
		default:
			devPending++
			open = true
			if c.Pending() == 0 {
				rt.Fatalf("open with nothing pending: %+v", c)
			}
		}
		items += c.Total
		itemsDone += c.Succeeded + c.Failed
	}
	if len(b.Commands) != nDevices || devSucceeded+devFailed+devPending != nDevices {
		rt.Fatalf("devices %d: %d succeeded + %d failed + %d pending", nDevices, devSucceeded, devFailed, devPending)
	}
	if open == !b.CompletedAt.IsZero() {
		rt.Fatalf("batch completed_at %v with open commands %v", b.CompletedAt, open)
	}
	// One event per final command, one batch.completed once complete.
	evs, err := s.EventsSince(ctx, accountID, 0, 10_000)
	if err != nil {
		rt.Fatal(err)
	}
	perCommand := map[string]int{}
	completed := 0
	for _, e := range evs {
		var body struct {
			Command struct {
				ID string `json:"id"`
			} `json:"command"`
			Batch struct {
				Devices struct{ Total, Succeeded, Failed, Pending int } `json:"devices"`
				Items   struct{ Total, Succeeded, Failed, Pending int } `json:"items"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(e.Payload, &body); err != nil {
			rt.Fatal(err)
		}
		switch e.Type {
		case attendance.EventCommandSucceeded, attendance.EventCommandFailed:
			perCommand[body.Command.ID]++
		case attendance.EventBatchCompleted:
			completed++
			d, i := body.Batch.Devices, body.Batch.Items
			if d.Succeeded+d.Failed+d.Pending != d.Total || i.Succeeded+i.Failed+i.Pending != i.Total || d.Pending != 0 {
				rt.Fatalf("batch.completed totals do not add up: %+v", body.Batch)
			}
		}
	}
	for _, c := range b.Commands {
		want := 0
		if c.Status.Terminal() {
			want = 1
		}
		if perCommand[c.ID] != want {
			rt.Fatalf("command %s (%s) has %d events", c.ID, c.Status, perCommand[c.ID])
		}
	}
	if (completed == 1) != !b.CompletedAt.IsZero() || completed > 1 {
		rt.Fatalf("%d batch.completed events, completed_at %v", completed, b.CompletedAt)
	}
	if b.Commands != nil && items < itemsDone {
		rt.Fatalf("%d items answered of %d", itemsDone, items)
	}
}
