// Package storetest is the conformance suite every store backend must pass,
// and the helpers other packages' tests use to open real, empty, migrated
// stores: SQLite always, PostgreSQL when PUNCHCONNECT_TEST_DATABASE_URL is set.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchconnect/punchconnect/internal/store"
)

// PostgresURLEnv names the variable holding a PostgreSQL URL for tests
// (any database the user may create schemas in). RequirePostgresEnv, when
// "1", makes a missing URL a failure instead of a skip: CI sets it.
const (
	PostgresURLEnv     = "PUNCHCONNECT_TEST_DATABASE_URL"
	RequirePostgresEnv = "PUNCHCONNECT_TEST_REQUIRE_POSTGRES"
)

// Backend opens fresh stores of one kind.
type Backend struct {
	Name string
	// NewURL returns the URL of a new, empty database, dropped when t ends.
	NewURL func(t testing.TB) string
}

// Open opens a migrated store on a new, empty database, closed when t ends.
func (b Backend) Open(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	return OpenURL(t, b.NewURL(t), opts)
}

// OpenURL opens and migrates a store at u, closed when t ends.
func OpenURL(t testing.TB, u string, opts store.Options) *store.Store {
	t.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	s, err := store.Open(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// Backends lists the backends to test: SQLite, and PostgreSQL when configured.
func Backends(t testing.TB) []Backend {
	bs := []Backend{SQLiteBackend()}
	if pg, ok := PostgresBackend(t); ok {
		bs = append(bs, pg)
	}
	return bs
}

// SQLiteBackend makes databases in the test's temporary directory.
func SQLiteBackend() Backend {
	return Backend{Name: "sqlite", NewURL: func(t testing.TB) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "punchconnect.db")
	}}
}

var (
	pgOnce  sync.Once
	pgAdmin *sql.DB
	pgErr   error
)

// PostgresBackend makes a schema per database in the configured PostgreSQL.
func PostgresBackend(t testing.TB) (Backend, bool) {
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		if os.Getenv(RequirePostgresEnv) == "1" {
			t.Fatalf("%s=1 but %s is not set", RequirePostgresEnv, PostgresURLEnv)
		}
		return Backend{}, false
	}
	return Backend{Name: "postgres", NewURL: func(t testing.TB) string {
		t.Helper()
		pgOnce.Do(func() { pgAdmin, pgErr = sql.Open("pgx", base) })
		if pgErr != nil {
			t.Fatalf("postgres: %v", pgErr)
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "t_" + hex.EncodeToString(b[:])
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pgAdmin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := pgAdmin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse %s: %v", PostgresURLEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}}, true
}

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
