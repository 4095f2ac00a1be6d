package store_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/attendance"
	"github.com/punchconnect/punchconnect/internal/store"
	"github.com/punchconnect/punchconnect/internal/store/storetest"
)

// TestQuietListenerKeepsItsConnection: a listening connection with nothing
// to hear is pinged now and then; the pings leave it working, on the same
// connection, and other nodes' commits are still heard.
func TestQuietListenerKeepsItsConnection(t *testing.T) {
	pg, ok := storetest.PostgresBackend(t)
	if !ok {
		t.Skip("PostgreSQL only: " + storetest.PostgresURLEnv + " is not set")
	}
	defer store.SetListenCheck(20 * time.Millisecond)()
	ctx, cancel := context.WithCancel(context.Background())
	u := pg.NewURL(t)
	s1 := storetest.OpenURL(t, u, store.Options{})
	s2 := storetest.OpenURL(t, u, store.Options{})
	log := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { s1.RunSignals(ctx, log) })
	wg.Go(func() { s2.RunSignals(ctx, log) })
	heard := func(what string) {
		t.Helper()
		select {
		case <-s1.OthersQueued():
		case <-time.After(10 * time.Second):
			t.Fatalf("node 1 did not hear %s", what)
		}
	}
	heard("that it listens")

	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	listeners := func() (pids []int) {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid`,
			"punchconnect listen "+parsed.Query().Get("search_path"))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var pid int
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		return pids
	}
	var before []int
	for range 500 { // node 2 may still be connecting
		if before = listeners(); len(before) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // about 15 quiet spells, each ended by a ping
	if after := listeners(); !slices.Equal(after, before) || len(after) != 2 {
		t.Fatalf("listening connections %v, then %v: want the same two", before, after)
	}
	a, _ := storetest.NewAccount(t, s2, "Acme")
	storetest.RecordEvents(t, s2, a.ID, attendance.EventAttendancePunch, 1)
	heard("node 2's events after the pings")
}
