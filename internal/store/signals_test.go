package store_test

import (
	"database/sql"
	"net/url"
	"slices"
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
	u := pg.NewURL(t)
	n := storetest.StartSignalNodes(t, u)
	defer n.Stop() // before listenCheck is restored
	heard := func(what string) { t.Helper(); n.Heard(t, what) }
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
	listeners := func() []int {
		return storetest.BackendPIDs(t, db, "punchconnect listen "+parsed.Query().Get("search_path"))
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
	a, _ := storetest.NewAccount(t, n.S2, "Acme")
	storetest.RecordEvents(t, n.S2, a.ID, attendance.EventAttendancePunch, 1)
	heard("node 2's events after the pings")
}
