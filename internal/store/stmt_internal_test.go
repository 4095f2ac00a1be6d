package store

import (
	"context"
	"path/filepath"
	"testing"
)

// On SQLite's writer a statement is parsed once: the first transaction that
// runs it prepares it for itself and has the pool prepare it once it ends;
// later transactions use the pool's statement on the one connection.
func TestWriterStatementsPreparedOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pc.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

// The writer keeps its temporary files — the sub-journal of each group
// commit's savepoints — in memory (2 = MEMORY): on disk they cost a pwrite
// for every page a request first changes.
func TestWriterTempStoreInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pc.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode int
	if err := s.write.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("writer's temp_store = %d, want 2 (MEMORY)", mode)
	}
}
