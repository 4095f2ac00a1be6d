package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openSQLite opens a fresh SQLite store, closed when the test ends.
func openSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "pc.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// On SQLite's writer a statement is parsed once: the first transaction that
// runs it prepares it for itself and has the pool prepare it once it ends;
// later transactions use the pool's statement on the one connection.
func TestWriterStatementsPreparedOnce(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT count(*) FROM accounts WHERE name <> ?`
	run := func() *stmtCache {
		var cache *stmtCache
		err := s.InTx(ctx, func(tx *Tx) error {
			cache = tx.stmts
			var n int
			return tx.queryRow(ctx, q, "x").Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return cache
	}
	first := run()
	if len(first.missed) != 1 || first.missed[0] != q {
		t.Fatalf("first transaction missed %q, want the query", first.missed)
	}
	s.writeStmts.mu.Lock()
	_, pooled := s.writeStmts.m[q]
	s.writeStmts.mu.Unlock()
	if !pooled {
		t.Fatal("the pool did not prepare the statement once the transaction ended")
	}
	for range 3 {
		if c := run(); len(c.missed) != 0 {
			t.Fatalf("a later transaction prepared %q again", c.missed)
		}
	}
}

// Group commit keeps its savepoints' sub-journals in memory (temp_store 2 =
// MEMORY): in a temporary file they cost a pwrite for every page a device
// request first changes. Other transactions keep SQLite's default, which
// spills a large statement's sub-journal to a file instead of memory.
func TestWriterSubjournal(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t)
	mode := func(tx *Tx) int {
		var m int
		// Not through the statement cache: a prepared PRAGMA keeps the
		// value it read when it was prepared.
		if err := tx.q.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, shared := range []bool{true, false, true, false} {
		var got int
		run := s.InTx
		if shared {
			run = func(ctx context.Context, fn func(*Tx) error) error { return s.InTxShared(ctx, "", fn) }
		}
		if err := run(ctx, func(tx *Tx) error { got = mode(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 2, false: 0}[shared]; got != want {
			t.Fatalf("shared %v: temp_store = %d, want %d", shared, got, want)
		}
	}
}

// Committed frames reach the database file without the writer: the
// checkpointer copies them beside it, long before wal_autocheckpoint's
// 10,000 pages would make the writer do it.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t)
	size := func() int64 {
		fi, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if _, err := s.Migrate(ctx); err != nil { // tens of pages, all in the WAL at first
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes 10 s after the migration: no checkpoint ran", size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
