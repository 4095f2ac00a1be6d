package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/id"
	"github.com/punchconnect/punchconnect/internal/store"
)

// runIngest is the part of the conformance suite the ingest pipeline and
// the device gateway stand on.
func runIngest(t *testing.T, b Backend) {
	t.Run("Punches", func(t *testing.T) { testPunches(t, b) })
	t.Run("AcceptedPunchesOrder", func(t *testing.T) { testAcceptedPunchesOrder(t, b) })
	t.Run("Events", func(t *testing.T) { testEvents(t, b) })
	t.Run("DeviceState", func(t *testing.T) { testDeviceState(t, b) })
	t.Run("DeviceImages", func(t *testing.T) { testDeviceImages(t, b) })
	t.Run("EmployeeLocks", func(t *testing.T) { testEmployeeLocks(t, b) })
	t.Run("Unclaimed", func(t *testing.T) { testUnclaimed(t, b) })
	t.Run("DeviceUsers", func(t *testing.T) { testDeviceUsers(t, b) })
	t.Run("SharedTx", func(t *testing.T) { testSharedTx(t, b) })
	t.Run("SharedTxDeadlock", func(t *testing.T) { testSharedTxDeadlock(t, b) })
	t.Run("SharedTxDevices", func(t *testing.T) { testSharedTxDevices(t, b) })
	t.Run("SharedTxPunches", func(t *testing.T) { testSharedTxPunches(t, b) })
}

func punchAt(acct, dev string, emp *string, badge string, at time.Time, status attendance.PunchStatus, key string) attendance.Punch {
	p := attendance.Punch{
		ID: id.New(id.Punch), AccountID: acct, DeviceID: dev, EmployeeID: emp, BadgeNumber: badge, Status: status,
		Time: at, DeviceTime: at.Format("2006-01-02 15:04:05"), LocalTime: at.Format(time.RFC3339),
		LocalDate: attendance.DateInt(at), WorkDate: attendance.DateInt(at), ReceivedAt: at.Add(time.Minute),
		Method: attendance.MethodFingerprint, Source: attendance.SourcePush, Raw: "raw " + key, DedupKey: key, CreatedAt: at,
	}
	if status == attendance.PunchAccepted {
		p.Direction, p.DirectionSource = attendance.In, attendance.DirectionFromRule
	} else {
		p.Reason = attendance.ReasonUnregisteredBadge
	}
	return p
}

func testPunches(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")
	dev, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("P1"), Site: attendance.Some("North")})
	must(t, err)
	emp, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("7")})
	must(t, err)

	var punches []attendance.Punch
	for i := range 12 {
		punches = append(punches, punchAt(acme.ID, dev.ID, &emp.ID, "7", Epoch.Add(time.Duration(i)*time.Hour), attendance.PunchAccepted, fmt.Sprintf("k%02d", i)))
	}
	held := punchAt(acme.ID, dev.ID, nil, "99", Epoch, attendance.PunchRejected, "held")
	var inserted map[string]bool
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		inserted, err = tx.InsertPunches(ctx, append(slices.Clone(punches), held))
		return err
	}))
	if len(inserted) != 13 {
		t.Fatalf("inserted %d of 13", len(inserted))
	}
	// The same dedup key again is not stored twice; another account's is its own.
	again := punchAt(acme.ID, dev.ID, &emp.ID, "7", Epoch, attendance.PunchAccepted, "k00")
	other := punchAt(rival.ID, "dev_x", nil, "7", Epoch, attendance.PunchAccepted, "k00")
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		inserted, err = tx.InsertPunches(ctx, []attendance.Punch{again, other})
		return err
	}))
	if inserted[again.ID] || !inserted[other.ID] {
		t.Fatalf("dedup across accounts wrong: %v", inserted)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		got, err := tx.ExistingDedupKeys(ctx, acme.ID, []string{"k00", "k05", "nope", "held"})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, map[string]bool{"k00": true, "k05": true, "held": true}) {
			t.Errorf("ExistingDedupKeys = %v", got)
		}
		refs, err := tx.AcceptedPunches(ctx, acme.ID, []string{emp.ID, "emp_other"}, Epoch.Add(2*time.Hour), Epoch.Add(5*time.Hour))
		if err != nil {
			return err
		}
		if len(refs) != 4 || !refs[0].Time.Equal(Epoch.Add(2*time.Hour)) || refs[3].DeviceID != dev.ID {
			t.Errorf("AcceptedPunches = %+v", refs)
		}
		p, err := tx.PunchByDedupKey(ctx, acme.ID, "k03")
		if err != nil || p.ID != punches[3].ID || p.Device.SerialNumber != "P1" || p.Employee == nil || p.Employee.ID != emp.ID {
			t.Errorf("PunchByDedupKey = %+v, %v", p, err)
		}
		hs, err := tx.HeldForBadge(ctx, acme.ID, "99")
		if err != nil || len(hs) != 1 || hs[0].ID != held.ID {
			t.Errorf("HeldForBadge = %v, %v", hs, err)
		}
		return nil
	}))

	t.Run("list and walk", func(t *testing.T) {
		q := store.PunchQuery{Status: attendance.PunchAccepted, DeviceID: dev.ID}
		var walked []string
		p := store.ListParams{Sort: store.PunchSorts[0], Limit: 5}
		for range 5 {
			page, err := s.ListPunches(ctx, acme.ID, q, p)
			must(t, err)
			if page.Total != 12 {
				t.Fatalf("total %d", page.Total)
			}
			for _, x := range page.Items {
				walked = append(walked, x.ID)
			}
			if page.Next == nil {
				break
			}
			p.After = page.Next
		}
		var want []string
		for _, x := range punches {
			want = append(want, x.ID)
		}
		if !slices.Equal(walked, want) {
			t.Fatalf("walk = %v\nwant %v", walked, want)
		}
		for _, tc := range []struct {
			q    store.PunchQuery
			want int
		}{
			{store.PunchQuery{Status: attendance.PunchAccepted, BadgeNumber: "7"}, 12},
			{store.PunchQuery{Status: attendance.PunchAccepted, Site: "North"}, 12},
			{store.PunchQuery{Status: attendance.PunchAccepted, Site: "South"}, 0},
			{store.PunchQuery{Status: attendance.PunchAccepted, From: Epoch.Add(time.Hour), To: Epoch.Add(3 * time.Hour)}, 3},
			{store.PunchQuery{Status: attendance.PunchAccepted, ReceivedFrom: Epoch.Add(11*time.Hour + time.Minute)}, 1},
			{store.PunchQuery{Status: attendance.PunchAccepted, LocalFrom: attendance.DateInt(Epoch), LocalTo: attendance.DateInt(Epoch)}, 12},
			{store.PunchQuery{Status: attendance.PunchRejected, BadgeNumber: "99"}, 1},
			{store.PunchQuery{Status: attendance.PunchRejected, Reason: "duplicate_window"}, 0},
		} {
			page, err := s.ListPunches(ctx, acme.ID, tc.q, store.ListParams{Sort: store.PunchSorts[0], Limit: 50})
			must(t, err)
			if page.Total != tc.want || len(page.Items) != tc.want {
				t.Errorf("%+v: total %d items %d, want %d", tc.q, page.Total, len(page.Items), tc.want)
			}
		}
		page, err := s.ListPunches(ctx, rival.ID, store.PunchQuery{Status: attendance.PunchAccepted}, store.ListParams{Sort: store.PunchSorts[0], Limit: 50})
		must(t, err)
		if page.Total != 1 {
			t.Fatalf("rival sees %d punches", page.Total)
		}
		_, err = s.ListPunches(ctx, acme.ID, store.PunchQuery{Status: attendance.PunchAccepted},
			store.ListParams{Sort: store.PunchSorts[0], Limit: 5, After: &store.Keyset{Value: int64(0), Tie: "not-a-number"}})
		wantCode(t, err, attendance.CodeInvalidCursor)
	})

	t.Run("release", func(t *testing.T) {
		must(t, s.InTx(ctx, func(tx *store.Tx) error {
			p, err := tx.RejectedPunch(ctx, acme.ID, held.ID)
			if err != nil {
				return err
			}
			p.Reason, p.Detail = attendance.ReasonInactiveEmployee, "inactive"
			if err := tx.UpdateRejection(ctx, &p); err != nil {
				return err
			}
			p.Status, p.EmployeeID, p.Direction, p.DirectionSource, p.ReleasedAt = attendance.PunchAccepted, &emp.ID, attendance.Out, attendance.DirectionFromRule, Epoch
			return tx.AcceptPunch(ctx, &p)
		}))
		p, err := s.Punch(ctx, acme.ID, held.ID)
		must(t, err)
		if p.Status != attendance.PunchAccepted || p.Reason != "" || !p.ReleasedAt.Equal(Epoch) || p.Direction != attendance.Out {
			t.Fatalf("released = %+v", p)
		}
		err = s.InTx(ctx, func(tx *store.Tx) error {
			p.ID = held.ID
			return tx.AcceptPunch(ctx, &p)
		})
		wantCode(t, err, attendance.CodeResourceNotFound)
		_, err = s.Punch(ctx, rival.ID, held.ID)
		wantCode(t, err, attendance.CodeResourceNotFound)
	})
}

// testAcceptedPunchesOrder: normalization reads several employees'
// punches at once and needs them in time order, not in the index's
// employee-then-time order.
func testAcceptedPunchesOrder(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	dev, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("P1")})
	must(t, err)
	var emps []string
	var punches []attendance.Punch
	for e, badge := range []string{"7", "8"} {
		emp, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some(badge)})
		must(t, err)
		emps = append(emps, emp.ID)
		for i := range 6 { // interleaved: 7 on the hour, 8 on the half hour
			at := Epoch.Add(time.Duration(i)*time.Hour + time.Duration(e)*30*time.Minute)
			punches = append(punches, punchAt(acme.ID, dev.ID, &emp.ID, badge, at, attendance.PunchAccepted, fmt.Sprintf("k%s-%d", badge, i)))
		}
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertPunches(ctx, punches)
		return err
	}))
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		refs, err := tx.AcceptedPunches(ctx, acme.ID, emps, Epoch.Add(time.Hour), Epoch.Add(4*time.Hour))
		if err != nil {
			return err
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.Time.Sub(Epoch).String())
		}
		if want := []string{"1h0m0s", "1h30m0s", "2h0m0s", "2h30m0s", "3h0m0s", "3h30m0s", "4h0m0s"}; !slices.Equal(got, want) {
			t.Errorf("AcceptedPunches times = %v, want %v", got, want)
		}
		return nil
	}))
}

func testEvents(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")
	var evs []attendance.Event
	for i := range 250 { // more than one insert chunk
		acct := acme.ID
		if i%10 == 9 {
			acct = rival.ID
		}
		evs = append(evs, attendance.Event{ID: id.New(id.Event), AccountID: acct, Type: attendance.EventDeviceStatus, CreatedAt: Epoch,
			DeviceID: "dev_1", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.InsertEvents(ctx, evs) }))
	got, err := s.EventsSince(ctx, acme.ID, 0, 1000)
	must(t, err)
	if len(got) != 225 || got[0].ID != evs[0].ID || string(got[0].Payload) != `{"n":0}` || got[0].EmployeeID != "" {
		t.Fatalf("events = %d, first %+v", len(got), got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatal("events out of order")
		}
	}
	rest, err := s.EventsSince(ctx, acme.ID, got[199].Seq, 1000)
	must(t, err)
	if len(rest) != 25 {
		t.Fatalf("after seq: %d", len(rest))
	}
}

// openWithDevice opens a store on a settable clock with an account and a
// device of that serial number.
func openWithDevice(t *testing.T, b Backend, serial string) (*store.Store, *Clock, attendance.Account, attendance.Device) {
	t.Helper()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	acme, _ := NewAccount(t, s, "Acme")
	d, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some(serial)})
	must(t, err)
	return s, clock, acme, d
}

func testDeviceState(t *testing.T, b Backend) {
	ctx := context.Background()
	s, clock, acme, d := openWithDevice(t, b, "STATE1")
	off, tz, users, capacity := 300, 330, 12, 100000
	d.Status, d.LastSeenAt, d.ClockOffsetSeconds, d.Firmware = attendance.DeviceStatusOnline, Epoch, &off, "Ver 2.0"
	d.Protocol, d.PushVersion, d.Language, d.IPAddress, d.CompleteThrough = "attendance", "2.4.1", "69", "10.0.0.2", Epoch
	d.Counts = attendance.DeviceCounts{Users: &users, LogCapacity: &capacity}
	d.RegistryCode, d.TZOffsetSent, d.TZCheckAt, d.ClockSamples = "abc", &tz, Epoch, []float64{299.5, 300.1}
	d.LastHeartbeatAt, d.OnlineSince, d.LastBacklogAt, d.LogWarned = Epoch, Epoch, Epoch, true
	d.Stamps = map[string]string{"ATTLOG": "9999"}
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.SaveDeviceState(ctx, &d) }))
	var got attendance.Device
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		var found bool
		got, found, err = tx.DeviceBySerial(ctx, "STATE1")
		if !found {
			t.Error("not found by serial")
		}
		return err
	}))
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
	}
	if _, found, err := s.DeviceBySerial(ctx, "NOPE"); found || err != nil {
		t.Fatalf("unknown serial: %v %v", found, err)
	}
	// A device request reads the device and its account in one statement.
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		dev, acct, found, err := tx.DeviceAndAccount(ctx, "STATE1")
		if err != nil || !found {
			t.Fatalf("device and account: found %v, %v", found, err)
		}
		if !reflect.DeepEqual(dev, d) {
			t.Fatalf("device with its account:\n got %+v\nwant %+v", dev, d)
		}
		wantAcct, err := tx.Account(ctx, acme.ID)
		if err != nil || !reflect.DeepEqual(acct, wantAcct) {
			t.Fatalf("account with the device:\n got %+v\nwant %+v (%v)", acct, wantAcct, err)
		}
		if _, _, found, err := tx.DeviceAndAccount(ctx, "NOPE"); found || err != nil {
			t.Fatalf("unknown serial: %v %v", found, err)
		}
		return nil
	}))

	// Many nodes checking at once turn a silent device offline exactly once.
	clock.Advance(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	changed := 0
	for range 4 {
		wg.Go(func() {
			err := s.InTx(ctx, func(tx *store.Tx) error {
				devs, err := tx.MarkOffline(ctx, clock.Now().Add(-90*time.Second).UnixMicro(), 100)
				mu.Lock()
				changed += len(devs)
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if changed != 1 {
		t.Fatalf("%d offline transitions, want 1", changed)
	}
	got, err := s.Device(ctx, acme.ID, d.ID)
	must(t, err)
	if got.Status != attendance.DeviceStatusOffline {
		t.Fatalf("status %s", got.Status)
	}
}

func testUnclaimed(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	see := func(serial, ip string) {
		must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.SeeUnclaimed(ctx, serial, ip, "", "", time.Minute) }))
	}
	see("GHOST", "10.0.0.1")
	clock.Advance(10 * time.Second)
	see("GHOST", "10.0.0.2") // within a minute: not written
	clock.Advance(time.Minute)
	see("GHOST", "10.0.0.3")
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		return tx.SeeUnclaimed(ctx, "GHOST", "10.0.0.4", "2.4.1", "acc", time.Minute)
	}))
	hold := func(serial string, size int) error {
		see(serial, "10.0.0.9")
		return s.InTx(ctx, func(tx *store.Tx) error {
			return tx.HoldUpload(ctx, attendance.HeldUpload{SerialNumber: serial, Kind: "ATTLOG", Query: "table=ATTLOG", Body: make([]byte, size), RemoteIP: "10.0.0.9"}, 100, 150)
		})
	}
	must(t, hold("GHOST", 60))
	must(t, hold("GHOST", 40))
	if err := hold("GHOST", 1); !errors.Is(err, store.ErrHeldFull) {
		t.Fatalf("over the per-serial limit: %v", err)
	}
	must(t, hold("OTHER", 50))
	if err := hold("THIRD", 1); !errors.Is(err, store.ErrHeldFull) {
		t.Fatalf("over the total limit: %v", err)
	}
	list, err := s.UnclaimedDevices(ctx)
	must(t, err)
	byserial := map[string]attendance.UnclaimedDevice{}
	for _, u := range list {
		byserial[u.SerialNumber] = u
	}
	g := byserial["GHOST"]
	// Contact within a minute of the last recorded one is not written (nor counted).
	if g.Requests != 3 || g.LastIP != "10.0.0.4" || g.PushVersion != "2.4.1" || g.DeviceType != "acc" || g.HeldUploads != 2 || g.HeldBytes != 100 || !g.FirstSeenAt.Equal(Epoch) {
		t.Fatalf("GHOST = %+v", g)
	}
	var held []attendance.HeldUpload
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		held, err = tx.ClaimHeld(ctx, "GHOST")
		return err
	}))
	if len(held) != 2 || len(held[0].Body) != 60 || len(held[1].Body) != 40 || held[0].Query != "table=ATTLOG" {
		t.Fatalf("claimed %+v", held)
	}
	list, _ = s.UnclaimedDevices(ctx)
	if len(list) != 2 {
		t.Fatalf("after claiming: %+v", list)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		held, err = tx.ClaimHeld(ctx, "GHOST")
		return err
	}))
	if len(held) != 0 {
		t.Fatal("claimed twice")
	}
}

func testDeviceUsers(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{Now: NewClock(Epoch).Now})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")
	d, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("USERS1")})
	must(t, err)
	emp, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("016")})
	must(t, err)
	pri := 14
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CountDeviceTemplates(ctx, d.ID, "016", 2, Epoch); err != nil {
			return err
		}
		if err := tx.UpsertDeviceUsers(ctx, []attendance.DeviceUser{
			{DeviceID: d.ID, PIN: "016", Name: "张三", NameRaw: []byte{0xd5, 0xc5, 0xc8, 0xfd}, Privilege: &pri, Card: "[15CD5B07]", HasPassword: true, Group: "1", UpdatedAt: Epoch},
			{DeviceID: d.ID, PIN: "16", Name: "Other", UpdatedAt: Epoch},
		}); err != nil {
			return err
		}
		return tx.CountDeviceTemplates(ctx, d.ID, "016", 1, Epoch)
	}))
	page, err := s.ListDeviceUsers(ctx, acme.ID, d.ID, store.ListParams{Sort: store.DeviceUserSorts[0], Limit: 10})
	must(t, err)
	if page.Total != 2 || len(page.Items) != 2 {
		t.Fatalf("users = %+v", page)
	}
	u := page.Items[0]
	if u.PIN != "016" || u.Name != "张三" || !reflect.DeepEqual(u.NameRaw, []byte{0xd5, 0xc5, 0xc8, 0xfd}) || *u.Privilege != 14 ||
		u.Templates != 3 || u.EmployeeID == nil || *u.EmployeeID != emp.ID {
		t.Fatalf("016 = %+v", u)
	}
	if page.Items[1].EmployeeID != nil {
		t.Fatal(`"16" matched the employee with badge "016"`)
	}
	page, err = s.ListDeviceUsers(ctx, rival.ID, d.ID, store.ListParams{Sort: store.DeviceUserSorts[0], Limit: 10})
	must(t, err)
	if page.Total != 0 {
		t.Fatal("another account lists the device's users")
	}
}

// testSharedTx: requests sharing a transaction (group commit) commit
// together, and one that fails or panics rolls back alone — its rows and
// its events; the events of the others are recorded once each, in each
// request's order, with their deliveries.
func testSharedTx(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	hook := NewWebhook(t, s, acme.ID, "https://acme.example/hook")
	const jobs = 40
	var wg sync.WaitGroup
	errs := make([]error, jobs)
	events := make([][2]string, jobs)
	for i := range jobs {
		wg.Go(func() {
			serial := fmt.Sprintf("SH%03d", i)
			errs[i] = s.InTxShared(ctx, serial, func(tx *store.Tx) error {
				_, err := tx.CreateDevice(ctx, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some(serial)})
				if err != nil {
					return err
				}
				for k := range events[i] {
					events[i][k] = id.New(id.Event)
					ev := attendance.Event{ID: events[i][k], AccountID: acme.ID, Type: attendance.EventDeviceStatus, CreatedAt: tx.Now, Payload: []byte(`{}`)}
					if err := tx.InsertEvents(ctx, []attendance.Event{ev}); err != nil {
						return err
					}
				}
				switch i % 10 {
				case 3:
					return errors.New("job failed after writing")
				case 7:
					panic("job panicked after writing")
				}
				return nil
			})
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if (i%10 == 3 || i%10 == 7) != (err != nil) {
			t.Fatalf("job %d: %v", i, err)
		}
		if err != nil {
			failed++
		}
	}
	n, err := s.CountDevices(ctx, acme.ID)
	must(t, err)
	if n != jobs-failed {
		t.Fatalf("%d devices, want %d: failed jobs must roll back alone", n, jobs-failed)
	}
	seqs := map[string]int64{}
	for _, d := range deliveriesOf(t, s, acme.ID, store.DeliveryList{}) {
		if _, twice := seqs[d.EventID]; twice || d.WebhookID != hook.ID {
			t.Fatalf("delivery %+v: a second one for its event, or not to the webhook", d)
		}
		seqs[d.EventID] = d.EventSeq
	}
	if len(seqs) != 2*(jobs-failed) {
		t.Fatalf("%d events delivered, want %d", len(seqs), 2*(jobs-failed))
	}
	for i, err := range errs {
		first, recorded := seqs[events[i][0]]
		second, recorded2 := seqs[events[i][1]]
		if err != nil && (recorded || recorded2) {
			t.Fatalf("job %d failed, yet its events were recorded", i)
		}
		if err == nil && (!recorded || !recorded2 || first >= second) {
			t.Fatalf("job %d: its events were recorded %v %v, at seq %d then %d", i, recorded, recorded2, first, second)
		}
	}
}

// testSharedTxDevices: requests sharing transactions find their own
// devices with their accounts, an unknown serial finds nothing, and
// requests of one device see each other's saved state, whether they share
// a group (the group keeps what each saved) or not.
func testSharedTxDevices(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")
	owner := map[string]string{"GD-1": acme.ID, "GD-2": acme.ID, "GD-3": rival.ID}
	created := map[string]attendance.Device{}
	for serial, acct := range owner {
		d, err := createDevice(t, s, acct, attendance.DeviceInput{SerialNumber: attendance.Some(serial)})
		must(t, err)
		created[serial] = d
	}
	serials := []string{"GD-1", "GD-2", "GD-3", "GD-NONE"}
	const rounds = 15
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(serials))
	for range rounds {
		for _, serial := range serials {
			wg.Go(func() {
				errs <- s.InTxShared(ctx, serial, func(tx *store.Tx) error {
					d, a, found, err := tx.DeviceAndAccount(ctx, serial)
					if err != nil {
						return err
					}
					if found != (owner[serial] != "") || found && (d.SerialNumber != serial || a.ID != owner[serial] || d.AccountID != a.ID) {
						return fmt.Errorf("%s: found %v, device %s of %s, account %s", serial, found, d.SerialNumber, d.AccountID, a.ID)
					}
					if !found {
						return nil
					}
					d.Firmware += "x"
					return tx.SaveDeviceState(ctx, &d)
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for serial, c := range created {
		d, err := s.Device(ctx, c.AccountID, c.ID)
		must(t, err)
		if d.Firmware != strings.Repeat("x", rounds) {
			t.Fatalf("%s: firmware %q after %d requests each adding one x: a request missed another's state", serial, d.Firmware, rounds)
		}
	}
}

// testSharedTxDeadlock: on PostgreSQL two groups of shared transactions
// commit at once, so they can deadlock: here two requests of two devices
// whose serial numbers fall in different lanes (so in different groups;
// the check that a request ran again fails if they ever share one — their
// FNV-1a hashes differ by 16,777,619, a prime, so they do not for any
// number of lanes pgLanes gives) each
// lock one device and then the other's. PostgreSQL fails one group; its request runs again alone and both
// succeed, their events recorded once each. The first run of each request
// waits for the other to hold its first device, so the deadlock happens.
func testSharedTxDeadlock(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	if s.Dialect() != store.Postgres {
		t.Skip("SQLite commits one group at a time: nothing to deadlock")
	}
	acme, _ := NewAccount(t, s, "Acme")
	NewWebhook(t, s, acme.ID, "https://acme.example/hook")
	serials := [2]string{"DL-A", "DL-B"}
	for _, serial := range serials {
		_, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some(serial)})
		must(t, err)
	}
	var holding sync.WaitGroup
	holding.Add(2)
	var runs [2]atomic.Int32
	var events [2]string
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			errs <- s.InTxShared(ctx, serials[i], func(tx *store.Tx) error {
				first := runs[i].Add(1) == 1
				for k, serial := range []string{serials[i], serials[1-i]} {
					if _, _, found, err := tx.DeviceAndAccount(ctx, serial); err != nil || !found {
						return fmt.Errorf("device %s: found %v, %v", serial, found, err)
					}
					if k == 0 && first {
						holding.Done()
						holding.Wait()
					}
				}
				events[i] = id.New(id.Event)
				return tx.InsertEvents(ctx, []attendance.Event{{ID: events[i], AccountID: acme.ID, Type: attendance.EventDeviceStatus, CreatedAt: tx.Now, Payload: []byte(`{}`)}})
			})
		}()
	}
	for range 2 {
		must(t, <-errs)
	}
	if runs[0].Load()+runs[1].Load() < 3 {
		t.Fatalf("runs %d and %d: no request ran again, so there was no deadlock to recover from", runs[0].Load(), runs[1].Load())
	}
	got := map[string]int{}
	for _, d := range deliveriesOf(t, s, acme.ID, store.DeliveryList{}) {
		got[d.EventID]++
	}
	if len(got) != 2 || got[events[0]] != 1 || got[events[1]] != 1 {
		t.Fatalf("deliveries by event %v, want one each of %v", got, events)
	}
}

// testEmployeeLocks: reading employees by badge for normalization finds
// them and, on PostgreSQL, holds their normalization locks to commit, so
// another transaction normalizing the same employee waits for it.
func testEmployeeLocks(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	e, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("77"), Name: attendance.Some("Asha")})
	must(t, err)
	if s.Dialect() != store.Postgres {
		must(t, s.InTx(ctx, func(tx *store.Tx) error {
			got, err := tx.EmployeesByBadgeLocked(ctx, acme.ID, []string{"77", "78"})
			if err == nil && (len(got) != 1 || got["77"].ID != e.ID) {
				t.Fatalf("by badge: %+v", got)
			}
			return err
		}))
		return // one writer at a time: nothing to lock
	}
	locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 2)
	end := sync.OnceFunc(func() { close(release) })
	defer end()
	go func() {
		done <- s.InTx(ctx, func(tx *store.Tx) error {
			got, err := tx.EmployeesByBadgeLocked(ctx, acme.ID, []string{"77", "78"})
			if err != nil {
				return err
			}
			if len(got) != 1 || got["77"].ID != e.ID {
				t.Errorf("by badge: %+v", got)
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	waited := make(chan struct{})
	go func() {
		done <- s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.EmployeesByBadgeLocked(ctx, acme.ID, []string{"77"})
			close(waited)
			return err
		})
	}()
	select {
	case <-waited:
		t.Fatal("another transaction took the employee's lock while the first held it")
	case <-time.After(300 * time.Millisecond):
	}
	end()
	must(t, <-done)
	<-waited
	must(t, <-done)
}

// testDeviceImages: what a device request reads of its device and account
// (DeviceAndAccount) is what was last committed — whichever request or API
// call wrote it, whether the writer kept an image of it (SQLite) or not —
// and a state write that changes nothing but a last-seen time less than a
// second old is skipped.
func testDeviceImages(t *testing.T, b Backend) {
	ctx := context.Background()
	s, clock, acme, created := openWithDevice(t, b, "IMG1")
	errFail := errors.New("request failed")
	// request runs fn as a device request does: in a shared transaction,
	// between reading the device and saving its state. errFailAfterSave
	// from fn fails the request once its state is saved.
	errFailAfterSave := errors.New("request failed after saving")
	request := func(fn func(d *attendance.Device, a attendance.Account) error) error {
		return s.InTxShared(ctx, "IMG1", func(tx *store.Tx) error {
			d, a, found, err := tx.DeviceAndAccount(ctx, "IMG1")
			if err != nil || !found {
				return fmt.Errorf("device and account: found %v, %v", found, err)
			}
			ferr := fn(&d, a)
			if ferr != nil && !errors.Is(ferr, errFailAfterSave) {
				return ferr
			}
			if err := tx.SaveDeviceState(ctx, &d); err != nil {
				return err
			}
			return ferr
		})
	}
	read := func() (attendance.Device, attendance.Account) {
		t.Helper()
		var d attendance.Device
		var a attendance.Account
		must(t, request(func(dev *attendance.Device, acct attendance.Account) error {
			d, a = *dev, acct
			return nil
		}))
		return d, a
	}
	stored := func() attendance.Device {
		t.Helper()
		d, err := s.Device(ctx, acme.ID, created.ID)
		must(t, err)
		return d
	}

	// A request's state is what the next one reads; the map it was handed
	// is its own.
	must(t, request(func(d *attendance.Device, _ attendance.Account) error {
		d.Status, d.LastSeenAt, d.Stamps = attendance.DeviceStatusOnline, Epoch, map[string]string{"ATTLOG": "1"}
		return nil
	}))
	for _, fail := range []error{errFail, errFailAfterSave} {
		if err := request(func(d *attendance.Device, _ attendance.Account) error {
			d.Stamps["ATTLOG"] = "changed, not committed"
			return fail
		}); !errors.Is(err, fail) {
			t.Fatalf("failed request: %v", err)
		}
	}
	if d, _ := read(); d.Stamps["ATTLOG"] != "1" || d.Status != attendance.DeviceStatusOnline {
		t.Fatalf("after a saved and a failed request: %+v", d)
	}
	if d := stored(); d.Stamps["ATTLOG"] != "1" || !d.LastSeenAt.Equal(Epoch) {
		t.Fatalf("stored: %+v", d)
	}

	// Only the last-seen time moved, by less than a second: not written;
	// by a second or more since the stored one: written.
	for _, step := range []struct {
		at     time.Duration
		stored time.Duration
	}{{400 * time.Millisecond, 0}, {900 * time.Millisecond, 0}, {1100 * time.Millisecond, 1100 * time.Millisecond}, {1500 * time.Millisecond, 1100 * time.Millisecond}} {
		must(t, request(func(d *attendance.Device, _ attendance.Account) error {
			d.LastSeenAt = Epoch.Add(step.at)
			return nil
		}))
		if got := stored().LastSeenAt; !got.Equal(Epoch.Add(step.stored)) {
			t.Fatalf("seen at +%s: stored last seen %s, want +%s", step.at, got, step.stored)
		}
	}
	// Anything else that changed is written at once.
	must(t, request(func(d *attendance.Device, _ attendance.Account) error {
		d.LastSeenAt, d.Firmware = Epoch.Add(1600*time.Millisecond), "Ver 9"
		return nil
	}))
	if got := stored(); got.Firmware != "Ver 9" || !got.LastSeenAt.Equal(Epoch.Add(1600*time.Millisecond)) {
		t.Fatalf("firmware changed: stored %+v", got)
	}

	// Writes by anything but a device request are read by the next request.
	key := "s3cret"
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateDevice(ctx, acme.ID, created.ID, attendance.DeviceInput{Name: attendance.Some("Gate"), CommKey: attendance.Some(&key)})
		return err
	}))
	if d, _ := read(); d.Name != "Gate" || d.CommKey != key || d.Firmware != "Ver 9" {
		t.Fatalf("after an update: %+v", d)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateSettings(ctx, acme.ID, attendance.SettingsInput{DedupWindowSeconds: attendance.Some(77)})
		return err
	}))
	if _, a := read(); a.Settings.DedupWindowSeconds != 77 {
		t.Fatalf("after a settings update: %+v", a.Settings)
	}
	clock.Advance(time.Hour)
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.MarkOffline(ctx, clock.Now().Add(-time.Minute).UnixMicro(), 100)
		return err
	}))
	if d, _ := read(); d.Status != attendance.DeviceStatusOffline {
		t.Fatalf("after offline detection: status %s", d.Status)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteDevice(ctx, acme.ID, created.ID) }))
	if err := request(func(*attendance.Device, attendance.Account) error { return nil }); err == nil {
		t.Fatal("a deleted device is still found")
	}

	// Requests of one device committed together, some failing: every saved
	// change is read by the next, none of a failed one.
	again, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("IMG1")})
	must(t, err)
	const requests = 64
	var wg sync.WaitGroup
	var saved atomic.Int64
	for i := range requests {
		wg.Go(func() {
			err := request(func(d *attendance.Device, _ attendance.Account) error {
				if d.ID != again.ID {
					return fmt.Errorf("read device %s, want %s", d.ID, again.ID)
				}
				n, _ := strconv.Atoi(d.Stamps["n"])
				d.Stamps = map[string]string{"n": strconv.Itoa(n + 1)}
				switch i % 5 {
				case 0:
					return errFail
				case 1:
					return errFailAfterSave
				}
				return nil
			})
			switch {
			case err == nil:
				saved.Add(1)
			case !errors.Is(err, errFail) && !errors.Is(err, errFailAfterSave):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want := strconv.Itoa(int(saved.Load()))
	if d, _ := read(); d.Stamps["n"] != want {
		t.Fatalf("after %d saved requests: read n = %q", saved.Load(), d.Stamps["n"])
	}
	if d, err := s.Device(ctx, acme.ID, again.ID); err != nil || d.Stamps["n"] != want {
		t.Fatalf("after %d saved requests: stored n = %q (%v)", saved.Load(), d.Stamps["n"], err)
	}
}

// testSharedTxPunches: the requests of one group commit see each other's
// punches as stored — their dedup keys (IngestLookup) and accepted punches
// (AcceptedPunches) — although on PostgreSQL the group writes them only
// before its COMMIT; and when another transaction stores one of a group's
// records first, the group's requests run again alone and find it stored.
func testSharedTxPunches(t *testing.T, b Backend) {
	ctx := context.Background()
	s, _, acme, d := openWithDevice(t, b, "HP-1")
	e, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("5"), Name: attendance.Some("Ines")})
	must(t, err)
	at := Epoch.Add(-time.Hour)
	from, to := at.Add(-time.Hour), at.Add(time.Hour)

	// The first request holds its lane while the others queue behind it, so
	// that they commit as one group.
	const jobs = 12
	release := make(chan struct{})
	var runs, wrote atomic.Int32
	seen := make([]int, jobs)
	errs := make(chan error, jobs)
	request := func(i int) {
		errs <- s.InTxShared(ctx, "HP-1", func(tx *store.Tx) error {
			runs.Add(1)
			if i == 0 {
				<-release
			}
			stored, employees, err := tx.IngestLookup(ctx, acme.ID, []string{"shared", fmt.Sprintf("own-%d", i)}, []string{"5", "404"})
			if err != nil {
				return err
			}
			if len(employees) != 1 || employees["5"].ID != e.ID || stored[fmt.Sprintf("own-%d", i)] {
				return fmt.Errorf("request %d: employees %v, stored %v", i, employees, stored)
			}
			refs, err := tx.AcceptedPunches(ctx, acme.ID, []string{e.ID}, from, to)
			if err != nil {
				return err
			}
			seen[i] = len(refs)
			punches := []attendance.Punch{punchAt(acme.ID, d.ID, &e.ID, "5", at.Add(time.Duration(i)*time.Second), attendance.PunchAccepted, fmt.Sprintf("own-%d", i))}
			if !stored["shared"] {
				wrote.Add(1)
				punches = append(punches, punchAt(acme.ID, d.ID, nil, "404", at, attendance.PunchRejected, "shared"))
			}
			_, err = tx.InsertPunches(ctx, punches)
			return err
		})
	}
	go request(0)
	for i := 1; i < jobs; i++ {
		go request(i)
	}
	time.Sleep(200 * time.Millisecond) // the others reach the lane's queue
	close(release)
	for range jobs {
		must(t, <-errs)
	}
	if runs.Load() != jobs || wrote.Load() != 1 {
		t.Fatalf("%d runs of %d requests, %d wrote the shared record: a group's requests must see each other's records and not run again", runs.Load(), jobs, wrote.Load())
	}
	slices.Sort(seen)
	for i, n := range seen {
		if n != i {
			t.Fatalf("accepted punches seen by the requests %v, want 0 to %d: each sees those of the requests before it", seen, jobs-1)
		}
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		refs, err := tx.AcceptedPunches(ctx, acme.ID, []string{e.ID}, from, to)
		if err == nil && len(refs) != jobs {
			err = fmt.Errorf("%d accepted punches stored, want %d", len(refs), jobs)
		}
		return err
	}))

	if s.Dialect() != store.Postgres {
		return // one writer: nothing stores a record between a request and its commit
	}
	// Another transaction stores the record a request of a group holds.
	held, other := make(chan struct{}), make(chan error, 1)
	var tries atomic.Int32
	var otherID string
	go func() {
		<-held
		p := punchAt(acme.ID, d.ID, nil, "404", at, attendance.PunchRejected, "raced")
		otherID = p.ID
		other <- s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertPunches(ctx, []attendance.Punch{p})
			return err
		})
	}()
	var racedRuns atomic.Int32
	must(t, s.InTxShared(ctx, "HP-1", func(tx *store.Tx) error {
		racedRuns.Add(1)
		stored, _, err := tx.IngestLookup(ctx, acme.ID, []string{"raced"}, nil)
		if err != nil || stored["raced"] {
			return err // the second run: stored by the other transaction
		}
		if tries.Add(1) > 1 {
			return errors.New("ran again and did not find the record stored")
		}
		if _, err := tx.InsertPunches(ctx, []attendance.Punch{punchAt(acme.ID, d.ID, nil, "404", at, attendance.PunchRejected, "raced")}); err != nil {
			return err
		}
		close(held)
		return <-other
	}))
	if racedRuns.Load() != 2 {
		t.Fatalf("the request ran %d times, want twice: it must hear that its record was stored by another transaction first", racedRuns.Load())
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error {
		p, err := tx.PunchByDedupKey(ctx, acme.ID, "raced")
		if err == nil && p.ID != otherID {
			err = fmt.Errorf("the record stored is %s, want the other transaction's %s", p.ID, otherID)
		}
		return err
	}))
}
