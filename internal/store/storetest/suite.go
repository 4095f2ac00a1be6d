package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
)

// Epoch is the instant fake clocks in tests start at.
var Epoch = time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)

// Run is the conformance suite: every backend must pass all of it.
func Run(t *testing.T, b Backend) {
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, b) })
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, b) })
	t.Run("FirstAccount", func(t *testing.T) { testFirstAccount(t, b) })
	t.Run("Settings", func(t *testing.T) { testSettings(t, b) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, b) })
	t.Run("Employees", func(t *testing.T) { testEmployees(t, b) })
	t.Run("EmployeeUpsert", func(t *testing.T) { testEmployeeUpsert(t, b) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, b) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, b) })
	t.Run("RateLimitCounter", func(t *testing.T) { testRateLimitCounter(t, b) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, b) })
	t.Run("RefreshStatistics", func(t *testing.T) { testRefreshStatistics(t, b) })
	runIngest(t, b)
	runDelivery(t, b)
	runRetention(t, b)
}

// NewAccount creates an account and returns it with its API key.
func NewAccount(t testing.TB, s *store.Store, name string) (attendance.Account, string) {
	t.Helper()
	var a attendance.Account
	var key string
	err := s.InTx(context.Background(), func(tx *store.Tx) (err error) {
		a, key, err = tx.CreateAccount(context.Background(), name, strings.ToLower(name)+"@example.com")
		return err
	})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return a, key
}

func wantCode(t testing.TB, err error, code attendance.Code) *attendance.Error {
	t.Helper()
	e, ok := attendance.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testMigrate(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.NewURL(t)
	// Several nodes starting at once each migrate; all must succeed and the
	// schema must be applied exactly once.
	const nodes = 4
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			s, err := store.Open(ctx, u, store.Options{MaxConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			_, errs[i] = s.Migrate(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	s := OpenURL(t, u, store.Options{})
	lines, err := s.Migrate(ctx)
	must(t, err)
	if len(lines) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", lines)
	}
}

func testAccounts(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	a, key := NewAccount(t, s, "Acme")
	if !strings.HasPrefix(a.ID, "acct_") || !strings.HasPrefix(key, attendance.APIKeyPrefix) {
		t.Fatalf("account %q key %q: wrong prefixes", a.ID, key)
	}
	got, err := s.AccountByAPIKey(ctx, key)
	must(t, err)
	if got.ID != a.ID || got.Name != "Acme" || got.Settings != attendance.DefaultSettings() {
		t.Fatalf("AccountByAPIKey = %+v, want %+v", got, a)
	}
	for _, bad := range []string{"", key + "x", key[:len(key)-1], strings.ToUpper(key)} {
		if _, err := s.AccountByAPIKey(ctx, bad); !errors.Is(err, store.ErrNoAccount) {
			t.Errorf("AccountByAPIKey(%q) = %v, want ErrNoAccount", bad, err)
		}
	}
	_, key2 := NewAccount(t, s, "Other")
	if key2 == key {
		t.Fatal("two accounts got the same key")
	}
}

func testFirstAccount(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.NewURL(t)
	s := OpenURL(t, u, store.Options{})
	const nodes = 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range nodes {
		wg.Go(func() {
			n, err := store.Open(ctx, u, store.Options{MaxConns: 2})
			if err != nil {
				t.Error(err)
				return
			}
			defer n.Close()
			_, key, ok, err := n.CreateFirstAccount(ctx, "Default", "")
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
				if _, err := s.AccountByAPIKey(ctx, key); err != nil {
					t.Errorf("first account key does not authenticate: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d nodes created a first account, want exactly 1", created)
	}
	if _, _, ok, err := s.CreateFirstAccount(ctx, "Again", ""); err != nil || ok {
		t.Fatalf("CreateFirstAccount after bootstrap = %v, %v; want no account", ok, err)
	}

	// A store that already has accounts (made with `accounts create`) gets no extra one.
	s2 := b.Open(t, store.Options{})
	NewAccount(t, s2, "Made by hand")
	if _, _, ok, err := s2.CreateFirstAccount(ctx, "Default", ""); err != nil || ok {
		t.Fatalf("CreateFirstAccount on a store with accounts = %v, %v; want none", ok, err)
	}
}

func testSettings(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	a, _ := NewAccount(t, s, "Acme")
	var got attendance.Settings
	must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
		got, err = tx.UpdateSettings(ctx, a.ID, attendance.SettingsInput{
			Timezone: attendance.Some("Asia/Kolkata"), DayStart: attendance.Some("04:30"),
			DirectionMode: attendance.Some("alternating"), DedupWindowSeconds: attendance.Some(120),
		})
		return err
	}))
	want := attendance.DefaultSettings()
	want.Timezone, want.DayStartMinutes, want.DirectionMode, want.DedupWindowSeconds = "Asia/Kolkata", 270, attendance.DirectionAlternating, 120
	if got != want {
		t.Fatalf("settings = %+v, want %+v", got, want)
	}
	reread, err := s.Account(ctx, a.ID)
	must(t, err)
	if reread.Settings != want {
		t.Fatalf("stored settings = %+v, want %+v", reread.Settings, want)
	}
	err = s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpdateSettings(ctx, a.ID, attendance.SettingsInput{Timezone: attendance.Some("Mars/Olympus")})
		return err
	})
	wantCode(t, err, attendance.CodeInvalidTimezone)
}

func createDevice(t testing.TB, s *store.Store, accountID string, in attendance.DeviceInput) (attendance.Device, error) {
	t.Helper()
	if err := in.Validate(true); err != nil {
		return attendance.Device{}, err
	}
	var d attendance.Device
	err := s.InTx(context.Background(), func(tx *store.Tx) (err error) {
		d, err = tx.CreateDevice(context.Background(), accountID, in)
		return err
	})
	return d, err
}

func testDevices(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")

	d, err := createDevice(t, s, acme.ID, attendance.DeviceInput{
		SerialNumber: attendance.Some(" bkrk233600045 "), Name: attendance.Some("Main Entrance"), Site: attendance.Some("HQ"),
	})
	must(t, err)
	if d.SerialNumber != "BKRK233600045" || d.Timezone != "UTC" || d.Status != attendance.DeviceStatusPending ||
		d.DirectionMode != nil || d.ClockOffsetSeconds != nil || !d.LastSeenAt.IsZero() || !d.CreatedAt.Equal(Epoch) {
		t.Fatalf("created device = %+v", d)
	}
	got, err := s.Device(ctx, acme.ID, d.ID)
	must(t, err)
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("Device = %+v, want %+v", got, d)
	}

	t.Run("serial unique across accounts", func(t *testing.T) {
		_, err := createDevice(t, s, rival.ID, attendance.DeviceInput{SerialNumber: attendance.Some("BKRK233600045")})
		e := wantCode(t, err, attendance.CodeSerialNumberTaken)
		if strings.Contains(e.Message, d.ID) || strings.Contains(e.Message, acme.ID) {
			t.Fatalf("message leaks the owner: %q", e.Message)
		}
		_, err = createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("BKRK233600045")})
		if e := wantCode(t, err, attendance.CodeSerialNumberTaken); !strings.Contains(e.Message, d.ID) {
			t.Fatalf("own duplicate should name the existing device: %q", e.Message)
		}
	})

	t.Run("other account sees nothing", func(t *testing.T) {
		_, err := s.Device(ctx, rival.ID, d.ID)
		wantCode(t, err, attendance.CodeResourceNotFound)
		err = s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpdateDevice(ctx, rival.ID, d.ID, attendance.DeviceInput{Name: attendance.Some("stolen")})
			return err
		})
		wantCode(t, err, attendance.CodeResourceNotFound)
		err = s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteDevice(ctx, rival.ID, d.ID) })
		wantCode(t, err, attendance.CodeResourceNotFound)
		page, err := s.ListDevices(ctx, rival.ID, store.ListParams{Sort: store.DeviceSorts[0], Limit: 10})
		must(t, err)
		if page.Total != 0 || len(page.Items) != 0 {
			t.Fatalf("rival lists %+v", page)
		}
	})

	t.Run("update", func(t *testing.T) {
		clock.Advance(time.Minute)
		mode := attendance.DirectionAlternating
		var up attendance.Device
		must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
			up, err = tx.UpdateDevice(ctx, acme.ID, d.ID, attendance.DeviceInput{
				Timezone: attendance.Some("Europe/Paris"), DirectionMode: attendance.Some(&mode),
			})
			return err
		}))
		if up.Timezone != "Europe/Paris" || up.DirectionMode == nil || *up.DirectionMode != mode ||
			up.Name != "Main Entrance" || !up.UpdatedAt.Equal(Epoch.Add(time.Minute)) || !up.CreatedAt.Equal(Epoch) {
			t.Fatalf("updated = %+v", up)
		}
		must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
			up, err = tx.UpdateDevice(ctx, acme.ID, d.ID, attendance.DeviceInput{DirectionMode: attendance.Some[*attendance.DirectionMode](nil)})
			return err
		}))
		if up.DirectionMode != nil {
			t.Fatalf("direction_mode not cleared: %+v", up)
		}
	})

	t.Run("delete frees the serial", func(t *testing.T) {
		must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteDevice(ctx, acme.ID, d.ID) }))
		_, err := s.Device(ctx, acme.ID, d.ID)
		wantCode(t, err, attendance.CodeResourceNotFound)
		err = s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteDevice(ctx, acme.ID, d.ID) })
		wantCode(t, err, attendance.CodeResourceNotFound)
		moved, err := createDevice(t, s, rival.ID, attendance.DeviceInput{SerialNumber: attendance.Some("BKRK233600045")})
		must(t, err)
		n, err := s.CountDevices(ctx, rival.ID)
		must(t, err)
		if n != 1 || moved.AccountID != rival.ID {
			t.Fatalf("rival has %d devices after claiming the freed serial", n)
		}
	})

	t.Run("list filters", func(t *testing.T) {
		for i, site := range []string{"North", "South", "North"} {
			_, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some(fmt.Sprintf("SN%03d", i)), Site: attendance.Some(site)})
			must(t, err)
		}
		page, err := s.ListDevices(ctx, acme.ID, store.ListParams{
			Filters: []store.Filter{{Column: store.DeviceFilters[0], Value: "North"}},
			Sort:    store.Column{Name: "serial_number", Kind: store.KindText}, Desc: true, Limit: 10,
		})
		must(t, err)
		if page.Total != 2 || len(page.Items) != 2 || page.Items[0].SerialNumber != "SN002" || page.Items[1].SerialNumber != "SN000" || page.Next != nil {
			t.Fatalf("North devices = %+v", page)
		}
	})
}

func createEmployee(t testing.TB, s *store.Store, accountID string, in attendance.EmployeeInput) (attendance.Employee, error) {
	t.Helper()
	if err := in.Validate(true); err != nil {
		return attendance.Employee{}, err
	}
	var e attendance.Employee
	err := s.InTx(context.Background(), func(tx *store.Tx) (err error) {
		e, err = tx.CreateEmployee(context.Background(), accountID, in)
		return err
	})
	return e, err
}

func ptr(s string) *string { return &s }

func testEmployees(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{Now: NewClock(Epoch).Now})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")

	e016, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{
		BadgeNumber: attendance.Some("016"), Name: attendance.Some("Sarah Chen"), ExternalID: attendance.Some(ptr("HR-1")),
		Metadata: attendance.Some(map[string]string{"cost_center": "42"}),
	})
	must(t, err)
	if e016.BadgeNumber != "016" || !e016.Active || e016.Metadata["cost_center"] != "42" || *e016.ExternalID != "HR-1" {
		t.Fatalf("created %+v", e016)
	}
	got, err := s.Employee(ctx, acme.ID, e016.ID)
	must(t, err)
	if got.Name != "Sarah Chen" || got.BadgeNumber != "016" || got.Metadata["cost_center"] != "42" {
		t.Fatalf("read back %+v", got)
	}

	t.Run("badge is a string", func(t *testing.T) {
		e16, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("16")})
		must(t, err)
		if e16.ID == e016.ID {
			t.Fatal("16 and 016 are the same employee")
		}
	})
	t.Run("badge unique per account", func(t *testing.T) {
		_, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("016")})
		wantCode(t, err, attendance.CodeBadgeNumberTaken)
		_, err = createEmployee(t, s, rival.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("016")})
		must(t, err)
	})
	t.Run("external_id unique per account", func(t *testing.T) {
		_, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("900"), ExternalID: attendance.Some(ptr("HR-1"))})
		wantCode(t, err, attendance.CodeExternalIDTaken)
		_, err = createEmployee(t, s, rival.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("900"), ExternalID: attendance.Some(ptr("HR-1"))})
		must(t, err)
	})
	t.Run("update", func(t *testing.T) {
		var up attendance.Employee
		must(t, s.InTx(ctx, func(tx *store.Tx) (err error) {
			up, err = tx.UpdateEmployee(ctx, acme.ID, e016.ID, attendance.EmployeeInput{
				Active: attendance.Some(false), ExternalID: attendance.Some[*string](nil),
			})
			return err
		}))
		if up.Active || up.ExternalID != nil || up.Name != "Sarah Chen" {
			t.Fatalf("updated %+v", up)
		}
		err := s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpdateEmployee(ctx, acme.ID, e016.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("16")})
			return err
		})
		wantCode(t, err, attendance.CodeBadgeNumberTaken)
		err = s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpdateEmployee(ctx, rival.ID, e016.ID, attendance.EmployeeInput{Name: attendance.Some("x")})
			return err
		})
		wantCode(t, err, attendance.CodeResourceNotFound)
	})
	t.Run("filter active", func(t *testing.T) {
		page, err := s.ListEmployees(ctx, acme.ID, store.ListParams{
			Filters: []store.Filter{{Column: store.Column{Name: "active", Kind: store.KindBool}, Value: false}},
			Sort:    store.EmployeeSorts[0], Limit: 50,
		})
		must(t, err)
		if page.Total != 1 || page.Items[0].ID != e016.ID {
			t.Fatalf("inactive = %+v", page)
		}
	})
	t.Run("delete frees the badge", func(t *testing.T) {
		must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteEmployee(ctx, acme.ID, e016.ID) }))
		_, err := s.Employee(ctx, acme.ID, e016.ID)
		wantCode(t, err, attendance.CodeResourceNotFound)
		again, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("016")})
		must(t, err)
		if again.ID == e016.ID {
			t.Fatal("re-created employee reused the deleted id")
		}
	})
}

func upsert(t testing.TB, s *store.Store, accountID string, items []attendance.EmployeeInput) []store.UpsertResult {
	t.Helper()
	var res []store.UpsertResult
	must(t, s.InTx(context.Background(), func(tx *store.Tx) (err error) {
		for i := range items {
			if err := items[i].Validate(true); err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
		}
		res, err = tx.UpsertEmployees(context.Background(), accountID, slices.Clone(items))
		return err
	}))
	return res
}

func testEmployeeUpsert(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	existing, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{
		BadgeNumber: attendance.Some("1042"), Name: attendance.Some("Sarah"), Department: attendance.Some(ptr("Ops")),
	})
	must(t, err)
	holder, err := createEmployee(t, s, acme.ID, attendance.EmployeeInput{BadgeNumber: attendance.Some("7"), ExternalID: attendance.Some(ptr("HR-7"))})
	must(t, err)

	res := upsert(t, s, acme.ID, []attendance.EmployeeInput{
		{BadgeNumber: attendance.Some("1042"), Name: attendance.Some("Sarah Chen")},       // update, keeps department
		{BadgeNumber: attendance.Some("1043"), Name: attendance.Some("James Okoro")},      // create
		{BadgeNumber: attendance.Some("1043"), Name: attendance.Some("Twice")},            // duplicate in batch
		{BadgeNumber: attendance.Some("1044"), ExternalID: attendance.Some(ptr("HR-7"))},  // external_id held by another
		{BadgeNumber: attendance.Some("7"), ExternalID: attendance.Some(ptr("HR-7b"))},    // holder moves away from HR-7
		{BadgeNumber: attendance.Some("1045"), ExternalID: attendance.Some(ptr("HR-7"))},  // … so HR-7 is free now
		{BadgeNumber: attendance.Some("1046"), ExternalID: attendance.Some(ptr("HR-7b"))}, // taken earlier in the batch
	})
	type want struct {
		created bool
		code    attendance.Code
	}
	wants := []want{{false, ""}, {true, ""}, {false, attendance.CodeDuplicateInBatch}, {false, attendance.CodeExternalIDTaken},
		{false, ""}, {true, ""}, {false, attendance.CodeExternalIDTaken}}
	for i, w := range wants {
		r := res[i]
		if w.code != "" {
			wantCode(t, r.Err, w.code)
			continue
		}
		if r.Err != nil || r.Created != w.created {
			t.Fatalf("item %d = %+v, want created=%v", i, r, w.created)
		}
	}
	if res[0].Employee.ID != existing.ID || res[0].Employee.Name != "Sarah Chen" || *res[0].Employee.Department != "Ops" {
		t.Fatalf("update merged wrong: %+v", res[0].Employee)
	}
	if res[4].Employee.ID != holder.ID {
		t.Fatalf("badge 7 should update the holder")
	}
	page, err := s.ListEmployees(ctx, acme.ID, store.ListParams{Sort: store.EmployeeSorts[0], Limit: 100})
	must(t, err)
	if page.Total != 4 { // 1042, 7, 1043, 1045
		t.Fatalf("total = %d, want 4", page.Total)
	}

	// A full batch of 5,000 in one call.
	big := make([]attendance.EmployeeInput, 5000)
	for i := range big {
		big[i] = attendance.EmployeeInput{BadgeNumber: attendance.Some(fmt.Sprintf("%05d", i)), Name: attendance.Some(fmt.Sprintf("Employee %d", i))}
	}
	res = upsert(t, s, acme.ID, big)
	for i, r := range res {
		if r.Err != nil || !r.Created {
			t.Fatalf("big item %d: %+v", i, r)
		}
	}
	res = upsert(t, s, acme.ID, big)
	for i, r := range res {
		if r.Err != nil || r.Created {
			t.Fatalf("big item %d on the second pass: %+v", i, r)
		}
	}
}

// testPagination checks, for random data, sorts and page sizes, that walking
// a list by cursor or by page number yields every row exactly once, in the
// order a reference sort gives.
func testPagination(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	rapid.Check(t, func(rt *rapid.T) {
		acct, _ := NewAccount(t, s, "Pager")
		n := rapid.IntRange(0, 25).Draw(rt, "n")
		names := rapid.SliceOfN(rapid.SampledFrom([]string{"", "Ann", "ann", "Bob", "Zoë", "bob"}), n, n).Draw(rt, "names")
		var all []attendance.Employee
		for i, name := range names {
			e, err := createEmployee(t, s, acct.ID, attendance.EmployeeInput{
				BadgeNumber: attendance.Some(fmt.Sprintf("B%d", rapid.IntRange(0, 1000).Draw(rt, "badge")*100+i)),
				Name:        attendance.Some(name),
				Active:      attendance.Some(i%3 != 0),
			})
			if err != nil {
				rt.Fatal(err)
			}
			all = append(all, e)
		}
		sort := rapid.SampledFrom(store.EmployeeSorts).Draw(rt, "sort")
		desc := rapid.Bool().Draw(rt, "desc")
		limit := rapid.IntRange(1, 7).Draw(rt, "limit")
		var filters []store.Filter
		want := slices.Clone(all)
		if rapid.Bool().Draw(rt, "filter") {
			filters = []store.Filter{{Column: store.Column{Name: "active", Kind: store.KindBool}, Value: true}}
			want = slices.DeleteFunc(want, func(e attendance.Employee) bool { return !e.Active })
		}
		key := func(e attendance.Employee) string {
			switch sort.Name {
			case "name":
				return e.Name
			case "badge_number":
				return e.BadgeNumber
			case "updated_at":
				return fmt.Sprintf("%020d", e.UpdatedAt.UnixMicro())
			default:
				return fmt.Sprintf("%020d", e.CreatedAt.UnixMicro())
			}
		}
		slices.SortFunc(want, func(x, y attendance.Employee) int {
			c := strings.Compare(key(x), key(y))
			if c == 0 {
				c = strings.Compare(x.ID, y.ID)
			}
			if desc {
				c = -c
			}
			return c
		})
		wantIDs := make([]string, len(want))
		for i, e := range want {
			wantIDs[i] = e.ID
		}

		var byCursor []string
		p := store.ListParams{Filters: filters, Sort: sort, Desc: desc, Limit: limit}
		for range n + 2 {
			page, err := s.ListEmployees(ctx, acct.ID, p)
			if err != nil {
				rt.Fatal(err)
			}
			if page.Total != len(want) {
				rt.Fatalf("total = %d, want %d", page.Total, len(want))
			}
			for _, e := range page.Items {
				byCursor = append(byCursor, e.ID)
			}
			if page.Next == nil {
				break
			}
			p.After = page.Next
		}
		if !slices.Equal(byCursor, wantIDs) {
			rt.Fatalf("cursor walk = %v, want %v", byCursor, wantIDs)
		}

		var byPage []string
		for off := 0; off < len(want)+limit; off += limit {
			page, err := s.ListEmployees(ctx, acct.ID, store.ListParams{Filters: filters, Sort: sort, Desc: desc, Limit: limit, Offset: off})
			if err != nil {
				rt.Fatal(err)
			}
			for _, e := range page.Items {
				byPage = append(byPage, e.ID)
			}
		}
		if !slices.Equal(byPage, wantIDs) {
			rt.Fatalf("page walk = %v, want %v", byPage, wantIDs)
		}
	})
}

func testIdempotency(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := NewClock(Epoch)
	s := b.Open(t, store.Options{Now: clock.Now})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")

	begin := func(acct, key, fp string) store.IdempotencyResult {
		t.Helper()
		r, err := s.BeginIdempotent(ctx, acct, key, fp)
		must(t, err)
		return r
	}
	first := begin(acme.ID, "k1", "fp-a")
	if first.Outcome != store.IdempotencyAcquired {
		t.Fatalf("first use: %v", first.Outcome)
	}
	if r := begin(acme.ID, "k1", "fp-a"); r.Outcome != store.IdempotencyInProgress {
		t.Fatalf("while running: %v, want in progress", r.Outcome)
	}
	if r := begin(acme.ID, "k1", "fp-b"); r.Outcome != store.IdempotencyMismatch {
		t.Fatalf("other request while running: %v, want mismatch", r.Outcome)
	}
	if r := begin(rival.ID, "k1", "fp-b"); r.Outcome != store.IdempotencyAcquired {
		t.Fatalf("keys are per account, got %v", r.Outcome)
	}
	// The response commits with the work, or not at all.
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CompleteIdempotent(ctx, first.Claim, 201, []byte(`{"data":1}`)); err != nil {
			return err
		}
		return errors.New("work failed")
	})
	if err == nil {
		t.Fatal("want the work's error")
	}
	if r := begin(acme.ID, "k1", "fp-a"); r.Outcome != store.IdempotencyInProgress {
		t.Fatalf("rolled-back completion still counts: %v", r.Outcome)
	}
	must(t, s.InTx(ctx, func(tx *store.Tx) error { return tx.CompleteIdempotent(ctx, first.Claim, 201, []byte(`{"data":1}`)) }))
	r := begin(acme.ID, "k1", "fp-a")
	if r.Outcome != store.IdempotencyReplay || r.Status != 201 || string(r.Body) != `{"data":1}` {
		t.Fatalf("replay = %+v", r)
	}
	if r := begin(acme.ID, "k1", "fp-b"); r.Outcome != store.IdempotencyMismatch {
		t.Fatalf("reuse with another request: %v", r.Outcome)
	}
	clock.Advance(store.IdempotencyTTL + time.Second)
	if r := begin(acme.ID, "k1", "fp-b"); r.Outcome != store.IdempotencyAcquired {
		t.Fatalf("after 24 h the key is new again: %v", r.Outcome)
	}

	t.Run("abandoned claim is taken over", func(t *testing.T) {
		dead := begin(acme.ID, "k2", "fp")
		clock.Advance(store.IdempotencyLockTimeout - time.Second)
		if r := begin(acme.ID, "k2", "fp"); r.Outcome != store.IdempotencyInProgress {
			t.Fatalf("before the lock timeout: %v", r.Outcome)
		}
		clock.Advance(2 * time.Second)
		alive := begin(acme.ID, "k2", "fp")
		if alive.Outcome != store.IdempotencyAcquired {
			t.Fatalf("after the lock timeout: %v", alive.Outcome)
		}
		err := s.InTx(ctx, func(tx *store.Tx) error { return tx.CompleteIdempotent(ctx, dead.Claim, 200, nil) })
		if !errors.Is(err, store.ErrIdempotencyClaimLost) {
			t.Fatalf("the slow original completing = %v, want ErrIdempotencyClaimLost", err)
		}
		must(t, s.CompleteIdempotent(ctx, alive.Claim, 200, []byte("ok")))
	})

	t.Run("release lets the client retry", func(t *testing.T) {
		c := begin(acme.ID, "k3", "fp")
		must(t, s.ReleaseIdempotent(ctx, c.Claim))
		if r := begin(acme.ID, "k3", "fp"); r.Outcome != store.IdempotencyAcquired {
			t.Fatalf("after release: %v", r.Outcome)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		clock.Advance(store.IdempotencyTTL + time.Minute)
		begin(acme.ID, "fresh", "fp")
		n, err := s.SweepIdempotencyKeys(ctx)
		must(t, err)
		if n < 3 {
			t.Fatalf("swept %d keys, want the 3+ expired ones", n)
		}
		if r := begin(acme.ID, "fresh", "fp"); r.Outcome != store.IdempotencyInProgress {
			t.Fatalf("sweep removed a live key: %v", r.Outcome)
		}
	})
}

func testRateLimitCounter(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	rival, _ := NewAccount(t, s, "Rival")
	day := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.CountRequest(ctx, acme.ID, day); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n, err := s.CountRequest(ctx, acme.ID, day)
	must(t, err)
	if n != workers*each+1 {
		t.Fatalf("count = %d, want %d: concurrent increments were lost", n, workers*each+1)
	}
	if n, _ := s.CountRequest(ctx, rival.ID, day); n != 1 {
		t.Fatalf("rival count = %d, want 1", n)
	}
	if n, _ := s.CountRequest(ctx, acme.ID, day.AddDate(0, 0, 1)); n != 1 {
		t.Fatalf("next day count = %d, want 1", n)
	}
	swept, err := s.SweepRateLimitCounters(ctx, day.AddDate(0, 0, 1))
	must(t, err)
	if swept != 2 {
		t.Fatalf("swept %d counters, want 2", swept)
	}
}

func testRollback(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateDevice(ctx, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("HALF")}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = s.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateDevice(ctx, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("PANIC")}); err != nil {
				return err
			}
			panic("handler bug")
		})
	}()
	if n, _ := s.CountDevices(ctx, acme.ID); n != 0 {
		t.Fatalf("%d devices survived failed transactions", n)
	}
	// The store still works after a panic mid-transaction.
	if _, err := createDevice(t, s, acme.ID, attendance.DeviceInput{SerialNumber: attendance.Some("AFTER")}); err != nil {
		t.Fatal(err)
	}
}

// testRefreshStatistics: on PostgreSQL a busy table is analyzed once it has
// changed by half its rows (and 500) since the last analysis — often enough
// that no plan outlives a young table's growth, rarely enough that a large
// import does not spend its CPU analyzing. SQLite gathers its own (nothing).
func testRefreshStatistics(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.NewURL(t)
	s := OpenURL(t, u, store.Options{})
	acme, _ := NewAccount(t, s, "Acme")
	badge := 0
	add := func(n int) {
		t.Helper()
		items := make([]attendance.EmployeeInput, n)
		for i := range items {
			badge++
			items[i] = attendance.EmployeeInput{BadgeNumber: attendance.Some(strconv.Itoa(badge))}
		}
		must(t, s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertEmployees(ctx, acme.ID, items)
			return err
		}))
	}
	// The server's counters reach pg_stat_user_tables within a second or so.
	analyzed := func(wait time.Duration) bool {
		t.Helper()
		deadline := time.Now().Add(wait)
		for {
			tables, err := s.RefreshStatistics(ctx)
			must(t, err)
			if slices.Contains(tables, "employees") {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if s.Dialect() != store.Postgres {
		add(600)
		if tables, err := s.RefreshStatistics(ctx); err != nil || tables != nil {
			t.Fatalf("SQLite: RefreshStatistics = %v, %v; want nothing", tables, err)
		}
		return
	}
	// Autovacuum would analyze the table too, on its own schedule.
	db, err := sql.Open("pgx", u)
	must(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, "ALTER TABLE employees SET (autovacuum_enabled = false)")
	must(t, err)
	add(600)
	if !analyzed(10 * time.Second) {
		t.Fatal("600 new employees: employees not analyzed")
	}
	add(450) // 450 changes: fewer than 500
	if analyzed(2 * time.Second) {
		t.Fatal("450 changes after 600 rows: employees analyzed again")
	}
	add(100) // 550 changes: more than 500, not half of 1,150 rows
	if analyzed(2 * time.Second) {
		t.Fatal("550 changes at 1,150 rows: employees analyzed again")
	}
	add(100) // 650 changes: more than half of 1,250
	if !analyzed(10 * time.Second) {
		t.Fatal("650 changes at 1,250 rows: employees not analyzed")
	}
}
